"""What a verification returns: one ``StepResult`` per numbered step, gathered in a
``Report`` whose ``result`` is verified / intact-key-not-pinned / failed.

A failure is a sentence (``failures``, unchanged since the first release: scripts grep it)
and, when a rule of ``checks.py`` found it, the typed ``Problem`` behind it; ``as_dict``
(the CLI's ``--json``) adds ``problems``: one ``{"message", "code", "got", "want"}`` per
failure, in the same order (``code`` etc. are null for a failure no typed rule made)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .checks import Problem

FORMAT = "traceseal-bundle/1"

# Report.result values (also in --json): the CLI exits 0, 4 and 1 for them
VERIFIED, INTACT_NOT_PINNED, FAILED = "verified", "intact-key-not-pinned", "failed"

STEPS = [
    (1, "format"), (2, "record-sigs"), (3, "header-sigs"), (4, "inclusion"), (5, "chain"),
    (6, "anchors"), (7, "coverage"), (8, "anchor-time"), (9, "selection"),
]

_MAX_TEXT = 200  # got/want are evidence, not a copy of the bundle: long values are cut


def jsonable(v: object) -> object:
    """``v`` as a small JSON value: hostile bundles hold 4,301-digit integers (which
    ``json.dumps`` refuses), huge strings and deep arrays; those are shortened to text."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return v
        return f"<integer of {v.bit_length()} bits>"
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, str):
        return v if len(v) <= _MAX_TEXT else v[:_MAX_TEXT] + "…"
    if isinstance(v, (list, tuple)) and len(v) <= 16 and all(
            x is None or isinstance(x, (bool, int, str)) for x in v):
        return [jsonable(x) for x in v]
    if isinstance(v, dict) and len(v) <= 16 and all(
            isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        return {k: jsonable(x) for k, x in v.items()}
    try:
        text = repr(v)
    except (ValueError, RecursionError):
        text = f"<{type(v).__name__}>"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


@dataclass
class StepResult:
    step: int
    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # failure index -> the typed problem behind it (only failures a check made)
    problems: dict[int, Problem] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, text: str, problem: Problem | None = None) -> None:
        """Record a failure sentence, with the typed problem it reports."""
        if problem is not None:
            self.problems[len(self.failures)] = problem
        self.failures.append(text)

    def problem(self, p: Problem, prefix: str = "") -> None:
        """Record a check's problem as the sentence ``prefix + p.detail``."""
        self.fail(prefix + p.detail, p)

    def as_dict(self) -> dict[str, Any]:
        probs = []
        for i, text in enumerate(self.failures):
            p = self.problems.get(i)
            probs.append({"message": text, "code": p.code if p else None,
                          "got": jsonable(p.got) if p else None, "want": jsonable(p.want) if p else None})
        return {"step": self.step, "name": self.name, "ok": self.ok, "checked": self.checked,
                "failures": self.failures, "notes": self.notes, "problems": probs}


@dataclass
class Report:
    steps: list[StepResult]
    summary: dict[str, Any] = field(default_factory=dict)
    key_pinned: bool = False

    @property
    def ok(self) -> bool:
        """Every step passed (which, without a pinned key, proves integrity only)."""
        return all(s.ok for s in self.steps)

    @property
    def result(self) -> str:
        """``verified`` only with a pinned gateway key; ``intact-key-not-pinned`` when every
        step passed but the key came from the bundle; else ``failed``."""
        if not self.ok:
            return FAILED
        return VERIFIED if self.key_pinned else INTACT_NOT_PINNED

    @property
    def first_failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key_pinned": self.key_pinned, "result": self.result,
                "steps": [s.as_dict() for s in self.steps], "summary": self.summary}
