"""Reading a bundle's text as every verifier must (docs/proof-format.md §9.1): duplicate
member names, NaN/Infinity and nesting deeper than ``MAX_DEPTH`` are refused."""

from __future__ import annotations

from typing import Any

from .. import safejson

MAX_DEPTH = 900  # §9.1: deeper JSON is unreadable (the browser's parser stops there too)


def loads_strict(text: str) -> Any:
    """JSON as a verifier must read it: duplicate member names and NaN/Infinity are refused,
    because two parsers could otherwise see two different records behind one signature."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in items:
            if k in d:
                raise ValueError(f"duplicate member name {k!r}")
            d[k] = v
        return d

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    value = safejson.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    depth = json_depth(value)
    if depth > MAX_DEPTH:
        raise ValueError(f"JSON nested {depth} levels deep, more than {MAX_DEPTH}")
    return value


def json_depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` is (iteratively: no recursion limit to hit).
    Costs about a third of the parse; §9.1 needs the exact number so all verifiers agree."""
    best = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    pop, push = stack.pop, stack.append
    while stack:
        v, d = pop()
        best = max(best, d)
        for x in (v.values() if type(v) is dict else v):
            t = type(x)
            if t is dict or t is list:
                push((x, d + 1))
    return best
