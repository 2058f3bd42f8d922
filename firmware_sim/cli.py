"""Command line: ``enroll`` probe keys, then run ``probes`` against a broker.

    python -m firmware_sim enroll --sensors 4 --key-dir keys --out sensors.toml
    python -m firmware_sim probes --port 1883 --key-dir keys --sensors 4 --rate 10 \\
        --count 600 --speed 3000 --scenario door --fault badsig=0.01,replay=0.01 --seed 7 \\
        --json-stats stats.json

Exit status: 0 done, 1 simulator error (bad option, broker refused, no PUBACK), 130 on
Ctrl-C (the summary of what was acknowledged so far is still printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .counter import DEFAULT_LEASE, DirLock
from .dynamics import MINUTE_MS
from .enroll import enroll, load_keys, sensor_ids, sensors_toml, write_text_atomic
from .errors import SimConfigError, SimError
from .faults import FAULT_KINDS, parse_faults
from .fleet import DEFAULT_TOPIC_PREFIX, Fleet, FleetConfig
from .publisher import BrokerConfig, MqttLink, run
from .scenarios import SCENARIOS, ScenarioTiming
from .stats import Stats


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="firmware_sim", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enroll", help="create or reuse probe keys, write the [[sensors]] TOML")
    e.add_argument("--sensors", type=int, required=True, help="number of probes")
    e.add_argument("--key-dir", type=Path, required=True)
    e.add_argument("--prefix", default="probe", help="ids are PREFIX-1 ... PREFIX-N")
    e.add_argument("--out", type=Path, required=True, help="TOML fragment to write")
    e.add_argument("--hmac", action="store_true",
                   help="shared HMAC-SHA256 keys (cheaper for the gateway) instead of Ed25519 key pairs")

    r = sub.add_parser("probes", help="publish simulated probe readings over MQTT")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=1883)
    r.add_argument("--username")
    r.add_argument("--password", help="or set TRACESEAL_SIM_PASSWORD")
    r.add_argument("--client-id", default="")
    r.add_argument("--key-dir", type=Path, required=True)
    r.add_argument("--sensors", type=int, default=1)
    r.add_argument("--prefix", default="probe")
    r.add_argument("--topic-prefix", default=DEFAULT_TOPIC_PREFIX)
    r.add_argument("--rate", type=float, default=1.0, help="messages per second per sensor")
    howlong = r.add_mutually_exclusive_group()
    howlong.add_argument("--duration", type=float, help="real seconds (ticks = duration*rate)")
    howlong.add_argument("--count", type=int, help="messages per sensor (ticks)")
    r.add_argument("--scenario", choices=SCENARIOS, default="normal")
    r.add_argument("--affected", default="1", help="probe numbers the scenario hits: 1,3")
    r.add_argument("--onset-min", type=float, default=120.0, help="simulated minutes to event")
    r.add_argument("--event-min", type=float, help="door-open / power-off length, sim minutes")
    r.add_argument("--appliance", choices=("mixed", "fridge", "freezer"), default="mixed")
    r.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    r.add_argument("--start-ms", type=int, help="simulated Unix ms of the first sample")
    r.add_argument("--fault", default="", help=f"kind=prob,... kinds: {','.join(FAULT_KINDS)}")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--counter-lease", type=int, default=DEFAULT_LEASE)
    r.add_argument("--ack-timeout", type=float, default=30.0, help="seconds per PUBACK batch")
    r.add_argument("--json-stats", type=Path, help="write the counts here as JSON")
    return p


def cmd_enroll(args: argparse.Namespace) -> int:
    entries = enroll(args.key_dir, sensor_ids(args.prefix, args.sensors), hmac=args.hmac)
    write_text_atomic(args.out, sensors_toml(entries))
    created = sum(e.created for e in entries)
    print(f"enrolled {len(entries)} sensors ({created} new keys, "
          f"{len(entries) - created} reused) in {args.key_dir}; wrote {args.out}")
    return 0


def _timing(args: argparse.Namespace) -> ScenarioTiming:
    onset = round(args.onset_min * MINUTE_MS)
    if args.event_min is None:
        return ScenarioTiming(onset_ms=onset)
    event = round(args.event_min * MINUTE_MS)
    return ScenarioTiming(onset_ms=onset, door_open_ms=event, power_off_ms=event)


def fleet_config(args: argparse.Namespace, now_ms: int) -> FleetConfig:
    """Flags -> FleetConfig; one sensor step is ``speed / rate`` simulated seconds."""
    if args.rate <= 0 or args.speed <= 0:
        raise SimConfigError(f"--rate and --speed must be > 0, got {args.rate} and {args.speed}")
    try:
        affected = tuple(int(x) for x in args.affected.split(",") if x.strip())
    except ValueError as exc:
        raise SimConfigError(f"--affected {args.affected!r}: want probe numbers like 1,3") from exc
    return FleetConfig(
        start_ms=args.start_ms if args.start_ms is not None else now_ms,
        step_ms=max(1, round(1000 * args.speed / args.rate)),
        scenario=args.scenario,
        appliance=args.appliance,
        timing=_timing(args),
        affected=affected,
        faults=parse_faults(args.fault),
        seed=args.seed,
        topic_prefix=args.topic_prefix,
        counter_lease=args.counter_lease,
    )


def cmd_probes(args: argparse.Namespace) -> int:
    config = fleet_config(args, now_ms=time.time_ns() // 1_000_000)
    count = args.count if args.duration is None else max(1, round(args.duration * args.rate))
    broker = BrokerConfig(
        host=args.host, port=args.port, username=args.username,
        password=args.password or os.environ.get("TRACESEAL_SIM_PASSWORD"),
        client_id=args.client_id, ack_timeout_s=args.ack_timeout,
    )
    ids = sensor_ids(args.prefix, args.sensors)
    stats = Stats()
    status = 0
    keys = load_keys(args.key_dir, ids)  # first: a missing key dir gets the enroll hint
    with DirLock(args.key_dir):
        fleet = Fleet(keys, args.key_dir, config)
        link = MqttLink(broker)
        link.connect()
        try:
            run(fleet, link, rate=args.rate, count=count, stats=stats)
        except KeyboardInterrupt:
            status = 130
        except SimError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
        finally:
            link.close()
    print(stats.summary_line())
    if args.json_stats is not None:
        write_text_atomic(args.json_stats, json.dumps(stats.as_dict(), indent=1) + "\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return cmd_enroll(args) if args.command == "enroll" else cmd_probes(args)
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
