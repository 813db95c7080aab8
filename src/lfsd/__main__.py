import sys

if sys.argv[1:3] == ["hook", "pre-receive"]:
    # git runs this on every push: skip the command line's imports (click, the store, fsck), a third of the start.
    from lfsd.hook import pre_receive

    sys.exit(pre_receive(sys.stdin, sys.stderr))

if sys.argv[1:3] in (["ssh", "keys"], ["ssh", "shell"]):
    # sshd runs these on every connection: they skip the command line's imports too (docs/ssh.md).
    from lfsd.ssh_entry import main as ssh_main

    sys.exit(ssh_main(sys.argv[2:]))

from lfsd.cli import main

main()
