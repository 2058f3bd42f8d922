"""``python -m gateway.cli``: the same as the ``traceseal`` entry point (``gateway.cli:main``)."""

import sys

from gateway.cli import main

sys.exit(main())
