"""`python -m callcenter` runs the same command line as the `callcenter` script."""

import sys

from callcenter.cli import main

sys.exit(main())
