"""python -m sf_kickstart.report ..."""

import sys

from sf_kickstart.report.cli import main

sys.exit(main())
