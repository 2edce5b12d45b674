"""python -m sf_kickstart.evaluate: see sf_kickstart.agents.evaluate."""
import sys

from sf_kickstart.agents.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
