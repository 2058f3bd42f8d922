"""Checks every rule test applies to the record bodies a rule returns for sealing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gateway.ingest.seal import RESERVED


def walk(x: Any) -> Iterator[Any]:
    """Every key and value of a JSON-like tree."""
    yield x
    if isinstance(x, dict):
        for k, v in x.items():
            yield k
            yield from walk(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from walk(v)


def assert_body_ok(body: dict[str, Any]) -> None:
    """A body the sealer will take: typed, no envelope keys, no floats, strict JSON."""
    assert isinstance(body, dict) and isinstance(body.get("type"), str), body
    assert not RESERVED & body.keys(), f"body sets envelope keys {RESERVED & body.keys()}"
    floats = [x for x in walk(body) if isinstance(x, float)]
    assert not floats, f"float in body: {floats} in {body}"
    json.dumps(body, allow_nan=False)
