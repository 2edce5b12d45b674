"""python -m sf_kickstart.tune: a kickstarting PBT population on Ray Tune (see sf_kickstart.populations.tune)."""
import sys

from sf_kickstart.populations.tune.cli import main

if __name__ == "__main__":
    sys.exit(main())
