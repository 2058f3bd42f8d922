"""One line of the doctor's report (its own module so the broker checks and the rest share it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    detail: str
    fix: str = ""
    key: str = ""  # the config key of a file `run` would refuse: such a FAIL makes the exit 2, as at `run`
