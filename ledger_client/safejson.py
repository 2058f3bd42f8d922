"""JSON parsing of untrusted text that cannot crash the process on deep nesting.

CPython's C JSON decoder recurses once per nested array/object and relies on Python's
recursion limit to stop. ``py_ecc`` (imported by ``eth_account``, so in every gateway that
anchors on EVM) raises that limit to 100,000 at import; the decoder then overflows the C
stack on input nested ~100,000 deep and the process dies with SIGSEGV. Here the limit is
held at ``PARSE_RECURSION_LIMIT`` while untrusted JSON is parsed, so deep input raises
RecursionError (a refusal) instead. The limit is process-wide: a lock and a count keep
overlapping parses from restoring it under each other.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PARSE_RECURSION_LIMIT = 3_000  # well inside an 8 MiB C stack for the decoder's frames

_lock = threading.Lock()
_active = 0
_saved = 0


@contextmanager
def bounded_recursion() -> Iterator[None]:
    """Hold Python's recursion limit at most at ``PARSE_RECURSION_LIMIT`` inside the block."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = sys.getrecursionlimit()
            if _saved > PARSE_RECURSION_LIMIT:
                sys.setrecursionlimit(PARSE_RECURSION_LIMIT)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and sys.getrecursionlimit() != _saved:
                sys.setrecursionlimit(_saved)


def loads(text: str | bytes, **kw: Any) -> Any:
    """``json.loads`` under ``bounded_recursion``; too deep input raises ValueError."""
    try:
        with bounded_recursion():
            return json.loads(text, **kw)
    except RecursionError as exc:
        raise ValueError("JSON nested too deep") from exc
