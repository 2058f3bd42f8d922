"""Retry pacing shared by every ledger client (and the gateway's anchor worker)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempt: int, rand: Callable[[], float] | random.Random, *, base: float = 1.0,
              cap: float = 300.0) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, …) while the node is unreachable.

    Full jitter: uniform in ``[0, min(cap, base·2^(attempt-1))]``, so a fleet of gateways
    that lost the same node do not come back in lock-step. ``rand`` is a random source —
    ``random.Random`` or a callable returning floats in [0, 1) — and the function is
    otherwise pure.
    """
    if attempt < 1:
        return 0.0
    u = rand.random() if isinstance(rand, random.Random) else rand()
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return max(0.0, min(1.0, u)) * ceiling
