"""``traceseal doctor -c CFG``: check a deployment and say what to fix.

Every check runs (one failure does not hide the next) and prints PASS, WARN or FAIL with a
fix. Exit status 0 only if nothing FAILs, 1 if a check FAILs, 2 for a bad configuration:
one that does not load, or names a file (key, password, certificate) that ``run`` would
refuse at start, reported as a FAIL line naming the config key and the path; ``--json``
for automation. Run it as the service user
(``sudo -u traceseal traceseal doctor -c /etc/traceseal/traceseal.toml``): ownership and
permissions are judged for the user running it.

The broker check goes beyond "port open": it proves the broker KEEPS QoS 1 messages for
an absent persistent session, because Mosquitto's default ``max_queued_messages 1000``
drops the rest silently while publishers still get PUBACKs. A probe client with a
persistent session subscribes to a private topic and goes away, 1,100 messages are
published, and the probe comes back and counts. The probe topic is
``traceseal/doctor/<random>``; with the shipped ACL add ``topic readwrite traceseal/doctor/#``
under ``user traceseal-gateway``, or the probe reports that it could not run (WARN).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import sqlite3
import stat
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from gateway.app import config as configmod
from gateway.app.config import Config, NamedFile, evm_key_file, named_files
from gateway.app.doctor.broker import MOSQUITTO_HINT, PROBE_MESSAGES, check_broker
from gateway.app.doctor.check import Check
from gateway.core.clock import SystemClock
from gateway.core.errors import ConfigError
from gateway.journal.reads import identity as journal_identity
from ledger_client.files import file_problem
from ledger_client.keys import load_private_key, public_hex
from ledger_client.local import ledger_public_key

__all__ = ["MOSQUITTO_HINT", "PROBE_MESSAGES", "Check", "add_doctor_args", "check_broker", "check_clock",
           "check_devices", "check_journal", "check_keys", "check_ledger", "cmd_doctor", "disk_headroom", "main",
           "named_file", "report", "run_checks"]

GiB = 1 << 30


def _user(uid: int) -> str:
    return next((p.pw_name for p in pwd.getpwall() if p.pw_uid == uid), str(uid))


def _file_fix(f: NamedFile) -> str:
    """What to do about a file `run` would refuse (the problem itself is configfiles.check_file's line)."""
    try:
        mode = f.path.stat().st_mode
    except FileNotFoundError:
        if f.key in ("gateway.key_file", "ledger.key_file", "ledger.evm.key_file"):
            return "traceseal keygen -c CONFIG (or restore the key from backup)"
        if f.key == "web.token_file":
            return "traceseal web-token -c CONFIG"
        return f"create it{' with mode 0600' if f.secret else ''}, or correct {f.key}"
    except OSError:
        return "run doctor as the service user; make the folder searchable by it"
    if f.secret and mode & 0o077:
        return f"chmod 600 {f.path}"
    return f"chown {_user(os.geteuid())} {f.path} (the user the gateway runs as)"


def named_file(f: NamedFile) -> Check:
    """A file the config names: the check `run` makes at start (configfiles.check_file), then, for
    a secret, owned by us (a key owned by someone else is a key they can replace), and for
    an Ed25519 key, that it loads."""
    problem = file_problem(f.path, f.what, private=f.secret)
    if problem is not None:
        return Check(f.label, "FAIL", f"config {f.key}: {problem}", _file_fix(f), key=f.key)
    if not f.secret:
        return Check(f.label, "PASS", f"{f.path}: readable")
    st, me = f.path.stat(), os.geteuid()
    if st.st_uid != me:
        return Check(f.label, "FAIL", f"{f.path}: owned by {_user(st.st_uid)}, not {_user(me)}",
                     f"chown {_user(me)} {f.path} (the user the gateway runs as)")
    c = Check(f.label, "PASS", f"{f.path}: mode {stat.S_IMODE(st.st_mode):04o}, owner {_user(me)}")
    if f.what == "key":
        try:
            c.detail += f", Ed25519 public key {public_hex(load_private_key(f.path))[:16]}…"
        except Exception as exc:  # noqa: BLE001 - a corrupt key must be named, not crash the doctor
            c = Check(f.label, "FAIL", f"config {f.key}: {exc}",
                      "restore the key from backup (never regenerate a gateway key lightly)", key=f.key)
    return c


def check_keys(cfg: Config) -> list[Check]:
    """Every file the config names (the gateway key first: ``run_checks`` reads its result)."""
    return [named_file(f) for f in named_files(cfg)]


def disk_headroom(free: int, total: int) -> tuple[str, str]:
    low = free < GiB or (total > 0 and free * 10 < total)
    return ("WARN" if low else "PASS"), (f"{free / GiB:.1f} GiB free of {total / GiB:.1f} GiB "
                                         f"({100 * free // max(total, 1)} %)")


def check_journal(cfg: Config, public_key: str | None) -> list[Check]:
    d = cfg.journal.path.parent
    out = []
    if not d.is_dir():
        return [Check("journal dir", "FAIL", f"{d}: missing", f"mkdir -p {d} && chown {_user(os.geteuid())} {d}")]
    try:
        with tempfile.NamedTemporaryFile(dir=d, prefix=".doctor-"):
            pass
        out.append(Check("journal dir", "PASS", f"{d}: writable"))
    except OSError as exc:
        out.append(Check("journal dir", "FAIL", f"{d}: not writable ({exc.strerror})",
                         f"chown {_user(os.geteuid())} {d}"))
    u = shutil.disk_usage(d)
    status, text = disk_headroom(u.free, u.total)
    out.append(Check("disk", status, f"{d}: {text}", "free space or move data_dir: under 1 GiB or 10 % free, a full "
                                                        "disk stops acknowledgements" if status != "PASS" else ""))
    if cfg.journal.path.exists() and public_key is not None:
        try:  # after `rotate-key` the configured key is the newest one: identity() says that one
            meta: dict[str, str] = journal_identity(cfg.journal.path)
        except sqlite3.Error as exc:
            return out + [Check("journal", "FAIL", f"{cfg.journal.path}: cannot read ({exc})",
                                "check the file and its permissions")]
        if meta.get("public_key") not in (None, public_key) or meta.get("gateway_id") not in (None, cfg.gateway_id):
            out.append(Check("journal", "FAIL",
                             f"{cfg.journal.path} belongs to gateway {meta.get('gateway_id')!r} with key "
                             f"{str(meta.get('public_key'))[:16]}…, not this config's gateway and key",
                             "restore this gateway's key, or point journal.path at this gateway's journal"))
        else:
            out.append(Check("journal", "PASS", f"{cfg.journal.path}: belongs to {cfg.gateway_id} and this key"))
    return out


# -- ledger, devices, clock -----------------------------------------------------------------
def check_ledger(cfg: Config) -> list[Check]:
    lg = cfg.ledger
    if lg.kind == "local":
        if not lg.path.exists():
            ok = os.access(lg.path.parent, os.W_OK)
            return [Check("ledger", "PASS" if ok else "FAIL",
                          f"{lg.path}: not created yet" + ("" if ok else "; folder not writable"),
                          "" if ok else f"chown {_user(os.geteuid())} {lg.path.parent}")]
        try:
            have = ledger_public_key(lg.path)
            mine = public_hex(load_private_key(lg.key_file))
        except Exception as exc:  # noqa: BLE001 - any reason it cannot open is a FAIL to report
            return [Check("ledger", "FAIL", f"{lg.path}: cannot open ({exc})", "check ledger.path and ledger.key_file")]
        if have is not None and have != mine:
            return [Check("ledger", "FAIL",
                          f"{lg.path} was created with key {have[:16]}…, not {lg.key_file}'s {mine[:16]}…",
                          "restore the ledger's key; a new key cannot extend this ledger")]
        return [Check("ledger", "PASS", f"local ledger {lg.path} opens with its key")]
    from ledger_client.evm import JsonRpc, load_eth_key  # lazy: eth_account is heavy, evm only

    url, want = str(lg.evm["rpc_url"]), int(lg.evm["chain_id"])
    rpc = JsonRpc(url, timeout_s=10)
    try:
        got = int(str(rpc.call("eth_chainId")), 16)
        if got != want:
            return [Check("ledger", "FAIL", f"{url} is chain id {got}, config says {want}",
                          "point ledger.evm.rpc_url at the right network, or fix ledger.evm.chain_id")]
        out = [Check("ledger", "PASS", f"{url}: chain id {got}")]
        addr = load_eth_key(evm_key_file(cfg.ledger)).address
        balance = int(str(rpc.call("eth_getBalance", addr, "latest")), 16)
        out.append(Check("ledger funds", "PASS" if balance > 0 else "WARN", f"{addr}: balance {balance} wei",
                         "" if balance > 0 else f"fund {addr} to pay for anchors"))
        return out
    except Exception as exc:  # noqa: BLE001 - RPC, key and network errors all mean "fix the ledger"
        return [Check("ledger", "FAIL", f"{url}: {exc}",
                      "check the node is up and reachable (systemd IPAddressAllow too)")]
    finally:
        rpc.close()


def check_devices(cfg: Config) -> list[Check]:
    out = []
    for s in cfg.serial:
        p = Path(s.path)
        if not p.exists():
            out.append(Check(f"serial {s.name}", "FAIL", f"{p}: no such device",
                             "plug it in; ls -l /dev/serial/by-id/ for its path"))
        elif not os.access(p, os.R_OK | os.W_OK):
            out.append(Check(f"serial {s.name}", "FAIL", f"{p}: no read/write access",
                             f"usermod -aG dialout {_user(os.geteuid())} (then restart the service)"))
        else:
            out.append(Check(f"serial {s.name}", "PASS", f"{p}: present"))
    if cfg.w1.enabled:
        ok = cfg.w1.base_dir.is_dir()
        out.append(Check("1-wire", "PASS" if ok else "FAIL", f"{cfg.w1.base_dir}: " + ("present" if ok else "missing"),
                         "" if ok else "add dtoverlay=w1-gpio to /boot/firmware/config.txt and reboot"))
    return out


def check_clock(clock: Any = None, retention_days: int = 0) -> Check:
    ok = (clock or SystemClock()).synced()
    bad = "not synchronised: records will say clock_synced false"
    if retention_days:
        bad += "; retention will not prune while the clock is unsynchronised"
    return Check("clock", "PASS" if ok else "WARN", "synchronised (NTP)" if ok else bad,
                 "" if ok else "timedatectl set-ntp true; check systemd-timesyncd or chrony")


def run_checks(cfg: Config, *, queue_probe: bool = True, messages: int = PROBE_MESSAGES,
               clock: Any = None) -> list[Check]:
    keys = check_keys(cfg)
    public_key = None
    if keys and keys[0].status == "PASS":
        public_key = public_hex(load_private_key(cfg.key_file))
    unusable = sorted(c.key for c in keys if c.key.startswith("mqtt."))
    broker = ([Check("broker", "WARN", f"not tried: {', '.join(unusable)} cannot be used (above)",
                     "fix the files above, then run doctor again")] if unusable
              else check_broker(cfg, queue_probe=queue_probe, messages=messages))
    return [*keys, *check_journal(cfg, public_key), *broker, *check_ledger(cfg), *check_devices(cfg),
            check_clock(clock, cfg.retention.days)]


def report(checks: list[Check], out: TextIO, as_json: bool = False) -> int:
    fails = sum(c.status == "FAIL" for c in checks)
    warns = sum(c.status == "WARN" for c in checks)
    if as_json:
        out.write(json.dumps({"ok": fails == 0, "checks": [asdict(c) for c in checks]}, indent=2) + "\n")
    else:
        for c in checks:
            out.write(f"{c.status:<5} {c.name:<14} {c.detail}\n")
            if c.fix:
                out.write(f"{'':<20} fix: {c.fix}\n")
        out.write(f"RESULT: {'OK' if not fails else 'NOT OK'} ({fails} FAIL, {warns} WARN)\n")
    if any(c.status == "FAIL" and c.key for c in checks):
        return 2  # a file `run` would refuse at start: bad configuration, the same exit as `run`
    return 1 if fails else 0


def add_doctor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-queue-probe", action="store_true", help="skip publishing 1,100 probe messages to the broker")


def cmd_doctor(args: argparse.Namespace) -> int:
    """For ``gateway.cli``: config errors raise ConfigError (exit 2 there)."""
    cfg = configmod.load(args.config)
    return report(run_checks(cfg, queue_probe=not args.no_queue_probe), sys.stdout, args.json)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="traceseal doctor", description="check a traceseal deployment and say what to fix")
    add_doctor_args(p)
    try:
        return cmd_doctor(p.parse_args(argv))
    except ConfigError as exc:
        print(f"traceseal doctor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
