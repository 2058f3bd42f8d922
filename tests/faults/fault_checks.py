"""How a CI test judges a scenario's rows (the report applies the same rules)."""

from __future__ import annotations

from bench.faults.common import Row, format_table


def assert_rows(rows: list[Row], *, seed: int | None = None) -> None:
    table = format_table(rows) + (f"\nseed {seed}" if seed is not None else "")
    print(table)
    for r in rows:
        assert not r.failures, f"{r.scenario}: {r.failures[:5]}\n{table}"
        if r.control:
            assert r.lost, f"{r.scenario}: the control did not show its loss\n{table}"
            continue
        assert r.lost in (0, None) and r.duplicated in (0, None), table
        if r.detected is not None and not r.known:  # known defects: see the strict xfails
            assert r.detected[0] == r.detected[1], f"{r.scenario}: detected {r.detected}\n{table}"
