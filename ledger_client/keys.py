"""Ed25519 key files and the hex encoding used for keys and signatures in bundles.

Private keys are PKCS#8 PEM files with mode 0600; loading refuses a file that group or
others can read, because a leaked device key lets anyone forge the whole record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyFileError
from .files import file_problem, owner_name, user_name, write_atomic


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def public_from_hex(text: str) -> Ed25519PublicKey:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise KeyFileError(f"public key {str(text)[:20]!r} is not 64 hex characters")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError(f"public key is not hex: {text[:20]!r}") from exc
    if len(raw) != 32:
        raise KeyFileError(f"public key is {len(raw)} bytes, want 32")
    return Ed25519PublicKey.from_public_bytes(raw)


_SIG_HEX = re.compile(r"[0-9a-f]{128}")


def verify_sig(pub: Ed25519PublicKey, sig_hex: str, message: bytes) -> bool:
    """Strict: exactly 128 lowercase hex characters (no whitespace, no other spellings)."""
    if not isinstance(sig_hex, str) or not _SIG_HEX.fullmatch(sig_hex):
        return False
    sig = bytes.fromhex(sig_hex)
    if _sodium_open is not None:
        return _sodium_verify(pub.public_bytes_raw(), sig, message)
    try:
        pub.verify(sig, message)
    except InvalidSignature:
        return False
    return True


# -- the hot paths: libsodium when PyNaCl is installed -------------------------------------
# Measured here for 150- and 350-byte messages (bench/README.md): libsodium verifies 1.9-2.4x
# and signs 1.6-1.8x faster than OpenSSL through `cryptography`, and verification is most of
# a reading's cost (the sensor's signature at admission, every record in `traceseal verify`).
# Ed25519 signing is deterministic (RFC 8032), so both libraries produce identical bytes
# (tests/test_ed25519_backends.py). libsodium's verification is the stricter one: it also
# refuses small-order public keys and R points, which no honestly generated key or signature
# has, so a bundle accepted here is accepted by OpenSSL too. Key files stay with cryptography.
try:
    from nacl.bindings import crypto_sign as _sodium_sign_combined
    from nacl.bindings import crypto_sign_open as _sodium_open
    from nacl.bindings import crypto_sign_seed_keypair as _sodium_keypair
    from nacl.exceptions import BadSignatureError as _SodiumBadSignature

    ED25519_BACKEND = "libsodium"
except ImportError:  # pragma: no cover - PyNaCl is a dependency; the OpenSSL path stays correct
    _sodium_open = None  # type: ignore[assignment]
    ED25519_BACKEND = "openssl"


def _sodium_verify(pub_raw: bytes, sig: bytes, message: bytes) -> bool:
    # crypto_sign_open takes signature || message: a signature of any other length would
    # shift bytes between the two, so the length is checked before concatenating.
    if len(sig) != 64 or len(pub_raw) != 32:
        return False
    try:
        _sodium_open(sig + message, pub_raw)
    except _SodiumBadSignature:
        return False
    return True


def signer(key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """``sign(message) -> 64-byte signature`` for a loaded key, through libsodium when present."""
    if _sodium_open is None:
        return key.sign
    secret = _sodium_keypair(key.private_bytes_raw())[1]  # seed || public, libsodium's layout

    def sign(message: bytes) -> bytes:
        return _sodium_sign_combined(message, secret)[:64]

    return sign


def verifier(pub: Ed25519PublicKey) -> Callable[[bytes, bytes], bool]:
    """``verify(signature, message) -> bool`` for one public key, through libsodium when present."""
    if _sodium_open is None:
        def verify_openssl(sig: bytes, message: bytes) -> bool:
            try:
                pub.verify(sig, message)
            except InvalidSignature:
                return False
            return True

        return verify_openssl
    raw = pub.public_bytes_raw()
    return lambda sig, message: _sodium_verify(raw, sig, message)


def write_private_key(path: Path, key: Ed25519PrivateKey | None = None, *, overwrite: bool = False,
                      owner: tuple[int, int] | None = None) -> Ed25519PrivateKey:
    """Create a 0600 key file atomically (files.atomic_writer: never through a planted link,
    never half written, 0600 from the first byte). Without ``overwrite`` an existing name,
    even a dangling symlink, is refused at the moment the file is published, so two writers
    cannot both "create" the key. ``owner`` (uid, gid), when root writes a key for the
    service user, is set before the file appears, so the service never finds a key it cannot read."""
    key = key or Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = Path(path)
    exists = KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    if os.path.lexists(path) and not overwrite:
        raise exists
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, pem, mode=0o600, overwrite=overwrite, owner=owner)
    except FileExistsError:
        raise exists from None
    except PermissionError:
        parent = next((p for p in path.parents if p.exists()), path.parent)
        raise KeyFileError(f"cannot write key file {path}: folder {parent} (owner {owner_name(parent)}) "
                           f"is not writable by {user_name(os.geteuid())}, the user running this") from None
    return key


def unreadable_key(path: Path) -> KeyFileError:
    """A key the service user cannot read (typically made by root): say whose it is and who
    we are, which is the whole diagnosis, instead of a traceback."""
    return KeyFileError(f"cannot read key file {path} (owner {owner_name(path)}, "
                        f"running as {user_name(os.geteuid())}); chown it to the user the gateway runs as")


def check_private_permissions(path: Path, what: str = "key") -> None:
    """A secret file (a key, a password, a TLS key) present, readable by us and by nobody
    else; KeyFileError naming the path otherwise. The one rule, files.file_problem, that the
    gateway and the archive also apply to every secret their configs name."""
    problem = file_problem(path, what, private=True)
    if problem is not None:
        raise KeyFileError(problem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        if not path.exists():
            raise KeyFileError(f"{path}: no such key file (create one with `traceseal keygen`)")
        check_private_permissions(path)
        data = path.read_bytes()
    except PermissionError:
        raise unreadable_key(path) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: {type(key).__name__} is not an Ed25519 key")
    return key
