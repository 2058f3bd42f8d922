"""The Ethereum key of a gateway: a secp256k1 key in its own 0600 file, separate from the
Ed25519 record-signing key. ``eth_account`` is imported lazily (only signing needs it) and
with the recursion limit kept (see ``_eth_account``)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from ..errors import KeyFileError
from ..files import write_atomic


def _eth_account() -> Any:
    """``eth_account.Account``, imported with Python's recursion limit kept as it was.

    ``eth_account`` imports ``py_ecc``, which raises the limit to 100,000 for the whole
    process. CPython's C JSON decoder relies on that limit to stop on deep nesting, so with it
    one deeply nested message (an MQTT payload, a node's reply, a bundle) overflowed the C
    stack and killed the gateway with SIGSEGV. Signing secp256k1 transactions does not need
    the deep recursion (py_ecc's pairing code is for BLS)."""
    import sys

    limit = sys.getrecursionlimit()
    try:
        from eth_account import Account
    finally:
        sys.setrecursionlimit(limit)
    return Account



def generate_eth_key(path: Path | str, *, overwrite: bool = False) -> str:
    """Write a new secp256k1 key (hex, one line) to a 0600 file; return its 0x address."""
    Account = _eth_account()

    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    acct = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # 0600 from the first byte, never through a planted link, never half written
        write_atomic(path, ("0x" + bytes(acct.key).hex() + "\n").encode(), mode=0o600, overwrite=overwrite)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    return str(acct.address)


def load_eth_key(path: Path | str) -> Any:
    """The ``LocalAccount`` in a key file; refuses a file group or others can read."""
    Account = _eth_account()

    path = Path(path)
    if not path.exists():
        raise KeyFileError(f"{path}: no such Ethereum key file (create one with generate_eth_key)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path}: mode {mode:04o} lets group/others read the Ethereum key; run: chmod 600 {path}")
    text = path.read_text().strip()
    try:
        return Account.from_key(text)
    except Exception as exc:  # eth-keys raises several types for bad input
        raise KeyFileError(f"{path}: not a hex secp256k1 private key ({type(exc).__name__})") from exc

