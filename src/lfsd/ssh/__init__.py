"""The SSH front end: it translates SSH commands (git-lfs-authenticate, the git-lfs-transfer protocol on pkt-lines,
Git) into the core's use cases, as ``http/`` does requests."""
