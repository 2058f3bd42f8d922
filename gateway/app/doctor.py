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
import contextlib
import json
import os
import pwd
import shutil
import socket
import sqlite3
import stat
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from gateway.app import config as configmod
from gateway.app.config import Config, MqttConfig, NamedFile, evm_key_file, named_files, read_secret
from gateway.core.clock import SystemClock
from gateway.core.errors import ConfigError
from ledger_client.files import file_problem
from ledger_client.keys import load_private_key, public_hex

GiB = 1 << 30
PROBE_MESSAGES = 1100
MOSQUITTO_HINT = ("the broker drops queued QoS 1 messages (Mosquitto's default max_queued_messages 1000): "
                  "sudo cp systemd/mosquitto-traceseal.conf /etc/mosquitto/conf.d/traceseal.conf && "
                  "sudo systemctl restart mosquitto")


@dataclass
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    detail: str
    fix: str = ""
    key: str = ""  # the config key of a file `run` would refuse: such a FAIL makes the exit 2, as at `run`


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
    return ("WARN" if low else "PASS"), f"{free / GiB:.1f} GiB free of {total / GiB:.1f} GiB ({100 * free // max(total, 1)} %)"


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
        out.append(Check("journal dir", "FAIL", f"{d}: not writable ({exc.strerror})", f"chown {_user(os.geteuid())} {d}"))
    u = shutil.disk_usage(d)
    status, text = disk_headroom(u.free, u.total)
    out.append(Check("disk", status, f"{d}: {text}", "free space or move data_dir: under 1 GiB or 10 % free, a full "
                                                        "disk stops acknowledgements" if status != "PASS" else ""))
    if cfg.journal.path.exists() and public_key is not None:
        try:
            db = sqlite3.connect(f"file:{cfg.journal.path}?mode=ro", uri=True)
            meta = dict(db.execute("SELECT k, v FROM meta"))
            if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='key_rotations'").fetchone():
                rot = db.execute("SELECT new_key FROM key_rotations ORDER BY seq DESC LIMIT 1").fetchone()
                if rot is not None:  # after `rotate-key` the configured key is the newest one
                    meta["public_key"] = rot[0]
            db.close()
        except sqlite3.Error as exc:
            return out + [Check("journal", "FAIL", f"{cfg.journal.path}: cannot read ({exc})", "check the file and its permissions")]
        if meta.get("public_key") not in (None, public_key) or meta.get("gateway_id") not in (None, cfg.gateway_id):
            out.append(Check("journal", "FAIL", f"{cfg.journal.path} belongs to gateway {meta.get('gateway_id')!r} with key "
                                                 f"{str(meta.get('public_key'))[:16]}…, not this config's gateway and key",
                             "restore this gateway's key, or point journal.path at this gateway's journal"))
        else:
            out.append(Check("journal", "PASS", f"{cfg.journal.path}: belongs to {cfg.gateway_id} and this key"))
    return out


# -- broker -------------------------------------------------------------------------------
class _Probe:
    """A paho client that counts distinct payloads and reports CONNACK/SUBACK."""

    def __init__(self, cfg: MqttConfig, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        self.cfg = cfg
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if cfg.username is not None:
            pw = read_secret("mqtt.password_file", cfg.password_file, "MQTT password") if cfg.password_file else None
            self.c.username_pw_set(cfg.username, pw)
        if cfg.tls_ca is not None:
            self.c.tls_set(ca_certs=str(cfg.tls_ca), certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
                           keyfile=str(cfg.tls_key) if cfg.tls_key else None)
        self.connack: Any = None
        self.suback: list[Any] | None = None
        self.got: set[bytes] = set()
        self.ev = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.ev.set()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[Any], props: Any) -> None:
        self.suback = rcs
        self.ev.set()

    def _on_message(self, c: Any, u: Any, m: Any) -> None:
        self.got.add(bytes(m.payload))

    def connect(self, *, clean_start: bool, expiry_s: int, timeout: float = 10.0) -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry_s
        self.ev.clear()
        self.c.connect(self.cfg.host, self.cfg.port, keepalive=30, clean_start=clean_start, properties=props)
        self.c.loop_start()
        if not self.ev.wait(timeout):
            raise TimeoutError("no CONNACK")
        return self.connack

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[Any]:
        self.ev.clear()
        self.c.subscribe(topic, qos=1)
        if not self.ev.wait(timeout) or self.suback is None:
            raise TimeoutError("no SUBACK")
        return self.suback

    def close(self) -> None:
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def forget(self) -> None:
        """Reconnect clean with expiry 0 so the broker drops the probe's session."""
        try:
            self.close()
            with contextlib.suppress(OSError, TimeoutError, ValueError):  # best effort: it expires in 300 s anyway
                self.connect(clean_start=True, expiry_s=0, timeout=5)
        finally:
            self.close()

    def wait_count(self, n: int, timeout: float, quiet: float = 2.0) -> int:
        deadline, last, seen = time.monotonic() + timeout, time.monotonic(), 0
        while time.monotonic() < deadline and len(self.got) < n:
            if len(self.got) != seen:
                seen, last = len(self.got), time.monotonic()
            elif time.monotonic() - last > quiet:
                break
            time.sleep(0.02)
        return len(self.got)


def check_broker(cfg: Config, *, queue_probe: bool = True, messages: int = PROBE_MESSAGES) -> list[Check]:
    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    try:
        socket.create_connection((m.host, m.port), timeout=5).close()
    except OSError as exc:
        return [Check("broker", "FAIL", f"{where}: not reachable ({exc})", "start the broker (systemctl status mosquitto) "
                                                                          "and check mqtt.host/mqtt.port")]
    run = uuid.uuid4().hex[:10]
    try:
        a = _Probe(m, f"traceseal-doctor-{run}-a")
    except (ConfigError, OSError, ValueError) as exc:  # password or TLS files: named above as well
        return [Check("broker", "FAIL", f"{where}: cannot set up an MQTT client ({exc})",
                      "fix the mqtt files reported above")]
    try:
        rc = a.connect(clean_start=True, expiry_s=300)
    except (OSError, TimeoutError) as exc:
        a.close()
        return [Check("broker", "FAIL", f"{where}: MQTT CONNECT failed ({exc})", "check mqtt TLS settings and the listener")]
    if rc.is_failure:
        a.close()
        return [Check("broker", "FAIL", f"{where}: refused our credentials ({rc})",
                      "check mqtt.username / mqtt.password_file against the broker's password_file")]
    out = [Check("broker", "PASS", f"{where}: MQTT 5 CONNECT accepted" + (f" as {m.username}" if m.username else ""))]
    if queue_probe:
        out.append(_queue_probe(m, a, run, messages))
    a.close()
    return out


def _queue_probe(m: MqttConfig, a: _Probe, run: str, messages: int) -> Check:
    topic = f"traceseal/doctor/{run}"
    acl_fix = "add `topic readwrite traceseal/doctor/#` under `user <gateway user>` in the broker's ACL file"
    b = _Probe(m, f"traceseal-doctor-{run}-b")
    try:
        if any(r.is_failure for r in a.subscribe(topic)):
            return Check("broker queue", "WARN", f"could not subscribe to the probe topic {topic} (ACL?)", acl_fix)
        b.connect(clean_start=True, expiry_s=0)
        b.c.publish(topic, b"live", qos=1).wait_for_publish(10)
        if a.wait_count(1, timeout=5) < 1:
            return Check("broker queue", "WARN", f"a probe message on {topic} was not delivered (ACL?): queueing not tested", acl_fix)
        a.close()  # away, with its session kept by the broker (expiry 300 s)
        infos = [b.c.publish(topic, f"q{i}".encode(), qos=1) for i in range(messages)]
        for info in infos:
            info.wait_for_publish(30)
        a.got.clear()
        a.connect(clean_start=False, expiry_s=300)
        got = a.wait_count(messages, timeout=60)
        if got < messages:
            return Check("broker queue", "FAIL", f"{got} of {messages} QoS 1 messages queued for an absent session were kept",
                         MOSQUITTO_HINT)
        return Check("broker queue", "PASS", f"all {messages} QoS 1 messages queued for an absent session were delivered")
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        return Check("broker queue", "WARN", f"queue probe could not run: {exc}", "re-run; check the broker log")
    finally:
        b.close()
        a.forget()


# -- ledger, devices, clock -----------------------------------------------------------------
def check_ledger(cfg: Config) -> list[Check]:
    lg = cfg.ledger
    if lg.kind == "local":
        if not lg.path.exists():
            ok = os.access(lg.path.parent, os.W_OK)
            return [Check("ledger", "PASS" if ok else "FAIL", f"{lg.path}: not created yet" + ("" if ok else "; folder not writable"),
                          "" if ok else f"chown {_user(os.geteuid())} {lg.path.parent}")]
        try:
            db = sqlite3.connect(f"file:{lg.path}?mode=ro", uri=True)
            row = db.execute("SELECT v FROM meta WHERE k='public_key'").fetchone()
            db.close()
            mine = public_hex(load_private_key(lg.key_file))
        except Exception as exc:  # noqa: BLE001 - any reason it cannot open is a FAIL to report
            return [Check("ledger", "FAIL", f"{lg.path}: cannot open ({exc})", "check ledger.path and ledger.key_file")]
        if row is not None and row[0] != mine:
            return [Check("ledger", "FAIL", f"{lg.path} was created with key {row[0][:16]}…, not {lg.key_file}'s {mine[:16]}…",
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
        return [Check("ledger", "FAIL", f"{url}: {exc}", "check the node is up and reachable (systemd IPAddressAllow too)")]
    finally:
        rpc.close()


def check_devices(cfg: Config) -> list[Check]:
    out = []
    for s in cfg.serial:
        p = Path(s.path)
        if not p.exists():
            out.append(Check(f"serial {s.name}", "FAIL", f"{p}: no such device", "plug it in; ls -l /dev/serial/by-id/ for its path"))
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


def run_checks(cfg: Config, *, queue_probe: bool = True, messages: int = PROBE_MESSAGES, clock: Any = None) -> list[Check]:
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
