import sys

from sf_kickstart.tune.cli import main

if __name__ == "__main__":
    sys.exit(main())
