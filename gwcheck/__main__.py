"""``python -m gwcheck``: the same command line as the ``gwcheck`` script."""

import sys

from .cli import main

sys.exit(main())
