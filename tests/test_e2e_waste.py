"""A waste route through three real gateways (hospital, truck, plant): device lines go through
each gateway's adapters, filter, custody station and sealer; each exports its route bundle;
`traceseal manifest` verifies every bundle with its own key and reconciles: exactly one
missing bin and one weight-loss alarm, and a forged stage or no session is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.waste_route import ROUTE, waste_route
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_route
from gateway.cli import main
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from gateway.transports.inbound import Inbound


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def table(name: str, d: dict[str, Any]) -> str:
    return f"[[{name}]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in d.items()) + "\n"



def run_gateway(tmp: Path, plan: Any, route: Any,
                extra_lines: list[tuple[int, str, str, bytes]] = ()) -> tuple[Path, str]:  # type: ignore[assignment]
    ports = {(ln.adapter, ln.port) for ln in plan.lines} | {(a, p) for _, a, p, _ in extra_lines}
    serial = "".join(table("serial", {"name": p, "path": f"/nonexistent/{p}", "adapter": a}) for a, p in sorted(ports))
    ops = "".join(table("operators", o) for o in route.operators_table())
    stations = "".join(table("custody.stations", s) for s in route.custody_table(plan.gateway)["stations"])
    recon = "[custody.reconcile]\nmissing_after_s = 0\nunknown_bin = false\n\n"  # one end of the route only
    st = make_station(tmp / plan.gateway, 1883, sensors=0, gateway_id=plan.gateway, max_records=10_000,
                      max_seconds=10**6, extra_toml="\n" + serial + ops + recon + stations)
    cfg = configmod.load(st.config_path)
    clock = FakeClock(start_ms=plan.lines[0].t_ms - 1000)
    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    gw.serial = None  # the lines are injected below exactly as the serial transport hands them over
    gw.start()
    j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
    items = sorted([(ln.t_ms, ln.adapter, ln.port, ln.raw) for ln in plan.lines] + list(extra_lines))
    try:
        for t, _, port, raw in items:
            clock.t_ms = t
            gw.inbox.put(Inbound("serial", port, raw))
            wait_for(lambda: gw.inbox.empty(), what="line taken")
            time.sleep(0.01)
        clock.advance(600_000)  # let timers (weight timeouts, idle sessions) run out
        time.sleep(0.5)
        sealed_before = j.stats()["records"]
        assert sealed_before > 0
    finally:
        gw.stop()
    gw2 = Gateway(cfg, clock=clock, with_mqtt=False)  # anchors what the clean stop sealed
    gw2.serial = None
    gw2.start()
    last = j.last_block()
    assert last is not None
    wait_for(lambda: j.stats()["anchored_block"] >= last.block, what="anchored")
    gw2.stop()
    out = tmp / f"{plan.gateway}.bundle.json"
    out.write_text(json.dumps(export_route(j, ROUTE)))
    return out, str(j.meta("public_key"))


def test_waste_route_across_three_gateways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    route = waste_route()
    plant = route.station("received")
    # a forged stage: the transporter badges in at the plant and tries to record "received"
    truck_badge = route.station("loaded").operator.badge
    extra = [(plant.lines[0].t_ms - 30_000, "badge", plant.port("badge"), truck_badge.encode() + b"\r\n")]
    bundles, keys = [], []
    for plan in route.stations:
        b, k = run_gateway(tmp_path, plan, route, extra if plan is plant else [])
        bundles.append(b)
        keys.append(f"{plan.gateway}={k}")

    plant_records = [e["record"] for e in json.loads(bundles[2].read_text())["records"]]
    j_plant = Journal(tmp_path / plant.gateway / "data" / "journal.sqlite", readonly=True)
    all_plant = [json.loads(r.body) for r in j_plant.records_range(0, 10**9)]
    refused = [r for r in all_plant if r["type"] == "custody_refusal"]
    assert any(r["reason"] == "stage-not-permitted" and "transporter" in r["message"] for r in refused), refused
    assert sum(1 for r in plant_records if r["type"] == "custody") == 4  # bin 3 never arrived

    next_day = str(route.start_ms + 24 * 3600 * 1000)  # judged the next day: bin 3 is overdue
    args = ["manifest", *map(str, bundles)] + [x for k in keys for x in ("--key", k)] + ["--as-of", next_day, "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(g["verified"] for g in report["gateways"])
    raised = [a for a in report["findings"]["alarms"] if a["state"] == "raised"]
    kinds = sorted((a["alarm"], a.get("grai", "")[-4:]) for a in raised)
    assert kinds == [("missing-bin", "1003"), ("weight-loss", "1004")], kinds
    loss = next(a for a in raised if a["alarm"] == "weight-loss")
    assert loss["pickup_weight_g"] == 9500 and loss["weight_g"] == 7600
    assert main(args[:-1] + ["--strict"]) == 1  # the findings make a strict check fail
    capsys.readouterr()

    # a bundle checked against another gateway's key does not count
    wrong = ["manifest", *map(str, bundles), "--key", keys[0], "--key", keys[1],
             "--key", f"{plant.gateway}={keys[0].split('=')[1]}", "--as-of", next_day, "--json"]
    assert main(wrong) == 1
    report = json.loads(capsys.readouterr().out)
    assert [g["verified"] for g in report["gateways"]] == [True, True, False]
