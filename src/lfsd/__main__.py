from lfsd.cli import main

main()
