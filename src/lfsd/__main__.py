import sys

if sys.argv[1:3] == ["hook", "pre-receive"]:
    # git runs this on every push: skip the command line's imports (click, the store, fsck), a third of the start.
    from lfsd.hook import pre_receive

    sys.exit(pre_receive(sys.stdin, sys.stderr))

from lfsd.cli import main

main()
