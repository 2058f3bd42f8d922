"""The fault suite's CI subset: the same scenario functions as ``bench/faults/run.py`` (the
report), called with ``bench.faults.suite.CI`` sizes. ``pytest tests/faults`` runs only these;
the report sizes run under ``TRACESEAL_FAULTS_FULL=1`` (marked ``slow``)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def fault_seed(request: pytest.FixtureRequest) -> int:
    """Random by default (each CI run explores other kill moments and inputs); the seed is
    printed on failure, and TRACESEAL_FAULTS_SEED replays it."""
    env = os.environ.get("TRACESEAL_FAULTS_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(2**31)
    request.node.user_properties.append(("fault_seed", seed))
    print(f"fault suite seed {seed} (replay: TRACESEAL_FAULTS_SEED={seed})")
    return seed
