"""python -m sf_kickstart.enjoy: see sf_kickstart.agents.enjoy."""
import sys

from sf_kickstart.agents.enjoy import main

if __name__ == "__main__":
    sys.exit(main())
