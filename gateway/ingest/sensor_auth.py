"""HMAC-SHA256 sensor authentication: a cheaper alternative to a per-message Ed25519 check.

A probe enrolled with ``hmac_key_file`` instead of ``public_key`` sends ``"mac"`` (64 hex
chars) instead of ``"sig"``: ``HMAC-SHA256(key, SENSOR_DOMAIN + JCS(message without "mac"))``,
the same bytes an Ed25519 probe signs. Checking it costs a few µs where ``crypto_sign_open``
costs ~57 µs (bench/README.md, admission modes). The trade-off is that the gateway holds the
secret: it could forge the sensor's messages (it signs every record anyway, so an auditor
already trusts it for that), and a stolen gateway disk reveals every HMAC key (re-key the
probes), while a stolen Ed25519 gateway reveals only public keys.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

from gateway.core.errors import ConfigError

SCHEME = "hmac-sha256"
KEY_BYTES = 32


def load_key(path: Path, where: str) -> bytes:
    """The 32-byte key in ``path`` (raw, or 64 hex chars and an optional newline); 0600 only.

    Errors name the config key (``where``) and the file, never the key's bytes.
    """
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(where, f"cannot read HMAC key file {path}: {exc.strerror}") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(where, f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others read the "
                                 f"HMAC key; run: chmod 600 {path}")
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ConfigError(where, f"{path}: want {KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex characters "
                             f"(got {len(data)} bytes)")


def tag(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, hashlib.sha256)


def check(key: bytes, message: bytes, mac: bytes) -> bool:
    """Constant-time: a timing difference must not leak how many leading bytes of a guess match."""
    return hmac.compare_digest(hmac.digest(key, message, hashlib.sha256), mac)
