"""``python -m firmware_sim``: same as the ``traceseal-sim`` script."""

import sys

from .cli import main

sys.exit(main())
