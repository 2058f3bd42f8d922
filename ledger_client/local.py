"""The embedded default ledger: an append-only SQLite file with its own Ed25519 key.

Each entry names a gateway block's header hash, is chained to the previous entry by hash,
timestamped by the ledger's clock and signed by the ledger's key. Honest about its trust:
it proves integrity and order, and the time *as its operator's clock said*; it does not
protect against an operator who controls both the gateway and this file. For time no one
can back-date, anchor on an EVM chain (``ledger_client.evm``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .canonical import LEDGER_DOMAIN, canonical
from .errors import LedgerError, LedgerUnavailable, VerificationError
from .keys import public_from_hex, public_hex, verify_sig
from .ledger import AnchorStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    header_hash BLOB NOT NULL UNIQUE,
    entry BLOB NOT NULL,
    sig BLOB NOT NULL,
    entry_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
"""

ZERO_HASH = "00" * 32


class LocalLedger:
    kind = "local"

    def __init__(self, path: Path, key: Ed25519PrivateKey, *, clock_ms: Callable[[], int],
                 ledger_id: str = "local") -> None:
        self.path = Path(path)
        self._key = key
        self._clock_ms = clock_ms
        self.ledger_id = ledger_id
        self.public_key = public_hex(key)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT v FROM meta WHERE k='public_key'").fetchone()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot open local ledger: {exc}") from exc
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('public_key', ?)", (self.public_key,))
        elif row[0] != self.public_key:
            raise LedgerError(f"{self.path}: ledger was created with key {row[0][:16]}…, not {self.public_key[:16]}…")

    # -- Ledger protocol -------------------------------------------------
    def prepare(self, header_hash: bytes, *, gateway: str, block: int, now_ms: int) -> dict[str, Any]:
        return {"kind": self.kind, "header_hash": header_hash.hex(), "gateway": gateway, "block": block}

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        h = bytes.fromhex(submission["header_hash"])
        with self._lock:
            if self._find(h) is not None:  # idempotent: a crash-retry gets the same entry
                return submission
            try:
                self._db.execute("BEGIN IMMEDIATE")
                last = self._db.execute("SELECT idx, entry_hash FROM entries ORDER BY idx DESC LIMIT 1").fetchone()
                idx = 0 if last is None else last[0] + 1
                entry = {
                    "ledger": self.ledger_id,
                    "index": idx,
                    "prev": ZERO_HASH if last is None else bytes(last[1]).hex(),
                    "header_hash": h.hex(),
                    "gateway": submission["gateway"],
                    "block": submission["block"],
                    "time_ms": self._clock_ms(),
                }
                data = canonical(entry)
                sig = self._key.sign(LEDGER_DOMAIN + data)
                self._db.execute(
                    "INSERT INTO entries VALUES (?,?,?,?,?)",
                    (idx, h, data, sig, hashlib.sha256(data).digest()),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                try:  # a failed COMMIT (disk full) has already rolled back; don't mask the cause
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise LedgerUnavailable(f"{self.path}: append failed: {exc}") from exc
        return submission

    def lookup(self, submission: dict[str, Any], *, now_ms: int) -> AnchorStatus:
        with self._lock:
            row = self._find(bytes.fromhex(submission["header_hash"]))
        if row is None:
            return AnchorStatus("dropped", reason="no ledger entry for this header hash")
        entry = json.loads(row[0])
        anchor = {"kind": self.kind, "entry": entry, "sig": bytes(row[1]).hex(), "ledger_key": self.public_key}
        return AnchorStatus("confirmed", anchor=anchor, time_ms=entry["time_ms"])

    def close(self) -> None:
        self._db.close()

    # -- helpers -----------------------------------------------------------
    def _find(self, header_hash: bytes) -> tuple[bytes, bytes] | None:
        row: tuple[bytes, bytes] | None = self._db.execute(
            "SELECT entry, sig FROM entries WHERE header_hash=?", (header_hash,)).fetchone()
        return row

    def check_chain(self) -> int:
        """Walk every entry: signatures and prev-hash chain. Returns the entry count."""
        prev = ZERO_HASH
        n = 0
        for idx, data, sig in self._db.execute("SELECT idx, entry, sig FROM entries ORDER BY idx"):
            entry = json.loads(data)
            if entry["index"] != idx or entry["prev"] != prev:
                raise LedgerError(f"ledger entry {idx}: chain broken (prev {entry['prev'][:16]}…, want {prev[:16]}…)")
            if not verify_sig(public_from_hex(self.public_key), bytes(sig).hex(), LEDGER_DOMAIN + bytes(data)):
                raise LedgerError(f"ledger entry {idx}: bad signature")
            prev = hashlib.sha256(data).hexdigest()
            n += 1
        return n


def verify_local_anchor(anchor: dict[str, Any], header_hash: bytes, *, step: int, pinned_key: str | None = None,
                        ledger_file: Path | None = None) -> int:
    """Check a ``local`` anchor; returns the ledger time (Unix ms). Raises VerificationError."""
    name = "anchor"
    try:
        entry, sig, key = anchor["entry"], anchor["sig"], anchor["ledger_key"]
        time_ms = entry["time_ms"]
    except (KeyError, TypeError) as exc:
        raise VerificationError(step, name, f"local anchor lacks field {exc}") from exc
    if pinned_key is not None and str(key).lower() != pinned_key.lower():
        raise VerificationError(step, name, f"ledger key {key[:16]}… is not the pinned key {pinned_key[:16]}…")
    if entry.get("header_hash") != header_hash.hex():
        raise VerificationError(step, name, f"anchor names header hash {str(entry.get('header_hash'))[:16]}…, "
                                            f"want {header_hash.hex()[:16]}…")
    try:
        pub = public_from_hex(key)
        data = canonical(entry)
    except Exception as exc:
        raise VerificationError(step, name, f"anchor entry unreadable: {exc}") from exc
    if not verify_sig(pub, sig, LEDGER_DOMAIN + data):
        raise VerificationError(step, name, f"ledger signature does not verify for entry {entry.get('index')}")
    if ledger_file is not None:
        db = sqlite3.connect(f"file:{ledger_file}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT entry FROM entries WHERE idx=?", (entry.get("index"),)).fetchone()
        finally:
            db.close()
        if row is None or bytes(row[0]) != data:
            raise VerificationError(step, name, f"entry {entry.get('index')} is not in ledger file {ledger_file}")
    if not isinstance(time_ms, int) or isinstance(time_ms, bool):
        raise VerificationError(step, name, f"anchor time {time_ms!r} is not an integer")
    return time_ms


def ledger_public_key(ledger_file: Path) -> str | None:
    """The public key a ledger file was created with (None: not recorded yet), read-only, for
    ``traceseal doctor``: a ledger can be extended only with its own key. Raises
    sqlite3.Error when the file cannot be read."""
    db = sqlite3.connect(f"file:{ledger_file}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT v FROM meta WHERE k='public_key'").fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])
