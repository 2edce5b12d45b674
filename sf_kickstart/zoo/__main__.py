"""python -m sf_kickstart.zoo: list the teachers you can name (see sf_kickstart.agents.zoo)."""
import sys

from sf_kickstart.agents.zoo import main

if __name__ == "__main__":
    sys.exit(main())
