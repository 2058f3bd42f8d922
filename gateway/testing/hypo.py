"""Property-test sizes: the full count in the default (CI) run, a fifth in `scripts/test --fast`.

The fast tier promises a pure-code check in under a minute on a 2-core machine; the property
tests are most of its time, so they shrink there and keep their full size everywhere else.
"""

from __future__ import annotations

import os


def examples(n: int) -> int:
    """Hypothesis ``max_examples`` for a test whose full size is ``n``."""
    return max(10, n // 5) if os.environ.get("TRACESEAL_FAST") == "1" else n
