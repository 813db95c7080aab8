"""The SSH front end: the git-lfs-transfer protocol (pkt-lines on the SSH channel). It translates only."""
