"""Create (or reuse) probe keys and write the ``[[sensors]]`` allow-list the gateway includes.

Idempotent on purpose: re-running enroll after adding probes must not rotate the keys of
the probes already installed, or the gateway would reject them all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_client.errors import KeyFileError
from ledger_client.files import write_atomic
from ledger_client.keys import load_private_key, public_hex, write_private_key

from .errors import SimConfigError
from .message import HmacKey

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # also safe as an MQTT topic level


@dataclass(frozen=True, slots=True)
class Enrolled:
    sensor: str
    public_key: str  # 64 hex chars, raw Ed25519
    created: bool  # False when an existing key was reused
    hmac_key_file: Path | None = None  # set instead of public_key for an HMAC-enrolled probe


def sensor_ids(prefix: str, count: int) -> list[str]:
    """``probe-1`` ... ``probe-N``: the ids both enroll and probes derive from the same flags."""
    if count < 1:
        raise SimConfigError(f"need at least one sensor, got {count}")
    ids = [f"{prefix}-{i}" for i in range(1, count + 1)]
    bad = [s for s in ids if not _ID_RE.match(s)]
    if bad:
        raise SimConfigError(f"sensor id {bad[0]!r}: use letters, digits, '.', '_' or '-'")
    return ids


def key_path(key_dir: Path, sensor: str) -> Path:
    return Path(key_dir) / f"{sensor}.key"


def hmac_path(key_dir: Path, sensor: str) -> Path:
    return Path(key_dir) / f"{sensor}.hmac"


def enroll(key_dir: Path, ids: list[str], *, hmac: bool = False) -> list[Enrolled]:
    """Make sure every sensor in ``ids`` has a 0600 key in ``key_dir``; reuse existing ones.

    ``hmac``: a shared 32-byte HMAC-SHA256 key (64 hex chars) that the gateway also reads,
    instead of an Ed25519 key pair (cheaper admission; see README "Sensor authentication").
    """
    key_dir = Path(key_dir)
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = []
    for sensor in ids:
        if hmac:
            out.append(_enroll_hmac(key_dir, sensor))
            continue
        path = key_path(key_dir, sensor)
        created = not path.exists()
        key = write_private_key(path) if created else _load(path)
        out.append(Enrolled(sensor, public_hex(key), created))
    return out


def _enroll_hmac(key_dir: Path, sensor: str) -> Enrolled:
    path = hmac_path(key_dir, sensor)
    created = not path.exists()
    if created:
        try:  # 0600 from the first byte, complete or absent, never replacing a key
            write_atomic(path, (os.urandom(32).hex() + "\n").encode("ascii"), mode=0o600, overwrite=False)
        except FileExistsError as exc:
            raise SimConfigError(f"{path}: appeared while enrolling; run enroll again") from exc
    else:
        _load_hmac(path)
    return Enrolled(sensor, "", created, hmac_key_file=path.resolve())


def _load_hmac(path: Path) -> HmacKey:
    try:
        return HmacKey(bytes.fromhex(path.read_text("ascii").strip()))
    except (OSError, ValueError) as exc:
        raise SimConfigError(f"{path}: not an HMAC key (64 hex characters)") from exc


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise SimConfigError(str(exc)) from exc


def load_keys(key_dir: Path, ids: list[str]) -> list[tuple[str, Ed25519PrivateKey | HmacKey]]:
    """Keys of ``ids``, in order (an Ed25519 key, else an HMAC key); a missing one is an error
    that says how to create it."""
    missing = [s for s in ids if not key_path(key_dir, s).exists() and not hmac_path(key_dir, s).exists()]
    if missing:
        raise SimConfigError(
            f"{len(missing)} of {len(ids)} sensor keys missing in {key_dir} (first: "
            f"{missing[0]}); run: python -m firmware_sim enroll --sensors {len(ids)} "
            f"--key-dir {key_dir} --out sensors.toml"
        )
    return [(s, _load(key_path(key_dir, s)) if key_path(key_dir, s).exists() else _load_hmac(hmac_path(key_dir, s)))
            for s in ids]


def sensors_toml(entries: list[Enrolled], kind: str = "temperature") -> str:
    """The TOML fragment: one ``[[sensors]]`` table per probe (ids are validated, no quoting
    issues)."""
    lines = ["# traceseal sensor allow-list, written by `python -m firmware_sim enroll`", ""]
    for e in entries:
        auth = (f'hmac_key_file = "{e.hmac_key_file}"' if e.hmac_key_file is not None
                else f'public_key = "{e.public_key}"')
        lines += [
            "[[sensors]]",
            f'id = "{e.sensor}"',
            auth,
            f'kind = "{kind}"',
            "",
        ]
    return "\n".join(lines)


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a fresh temporary file renamed over ``path`` (ledger_client.files), so a
    gateway reading the file never sees half of it and a planted link is never followed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
