"""python -m sf_kickstart.zoo.ship EXPERIMENT NAME --command=...: make a shipped zoo teacher
(sf_kickstart.agents.zoo.ship)."""
import sys

from sf_kickstart.agents.zoo.ship import main

if __name__ == "__main__":
    sys.exit(main())
