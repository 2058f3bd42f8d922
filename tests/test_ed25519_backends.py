"""libsodium (the hot paths) against OpenSSL through cryptography (key files, the reference).

Ed25519 signing is deterministic, so the two must give identical signatures, and they must
agree on every honest or tampered signature. They differ, on purpose, on small-order public
keys: OpenSSL accepts a universal forgery under the identity point, libsodium refuses it.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.testing.hypo import examples
from ledger_client import keys

# RFC 8032 §7.1, TEST 1 and TEST 2: (secret, public, message, signature)
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


def test_libsodium_is_the_backend():
    assert keys.ED25519_BACKEND == "libsodium"  # PyNaCl is a dependency; its absence is a broken install


@pytest.mark.parametrize("secret,public,message,signature", RFC8032)
def test_rfc8032_vectors(secret, public, message, signature):
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    pub = keys.public_from_hex(public)
    assert keys.public_hex(key) == public
    assert keys.signer(key)(bytes.fromhex(message)).hex() == signature
    assert keys.verifier(pub)(bytes.fromhex(signature), bytes.fromhex(message))
    assert keys.verify_sig(pub, signature, bytes.fromhex(message))


@settings(max_examples=examples(200), deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=600),
       flip=st.integers(0, 64 * 8 - 1), mflip=st.integers(0, 10_000))
def test_signatures_identical_and_verdicts_agree(seed, message, flip, mflip):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = key.public_key()
    sig = keys.signer(key)(message)
    assert sig == key.sign(message)
    verify = keys.verifier(pub)

    def openssl(s: bytes, m: bytes) -> bool:
        try:
            pub.verify(s, m)
        except Exception:  # noqa: BLE001 - any refusal (InvalidSignature, ValueError) is "rejects"
            return False
        return True

    bad_sig = bytearray(sig)
    bad_sig[flip // 8] ^= 1 << (flip % 8)
    cases = [(sig, message), (bytes(bad_sig), message)]
    if message:
        bad_msg = bytearray(message)
        bad_msg[mflip % len(message)] ^= 1
        cases.append((sig, bytes(bad_msg)))
    for s, m in cases:
        assert verify(s, m) == openssl(s, m) == keys.verify_sig(pub, s.hex(), m)
    assert verify(sig, message) is True


def test_signature_length_is_checked_before_concatenation():
    """crypto_sign_open takes sig || message: one byte moved across must not verify."""
    key = Ed25519PrivateKey.generate()
    sig = key.sign(b"xhello")
    verify = keys.verifier(key.public_key())
    assert verify(sig, b"xhello")
    assert not verify(sig[:63], bytes([sig[63]]) + b"xhello")
    assert not verify(sig + b"x", b"hello")


def test_small_order_key_forgery_refused():
    identity = bytes([1]) + bytes(31)
    pub = Ed25519PublicKey.from_public_bytes(identity)
    forged = identity + bytes(32)  # R = identity, S = 0 "verifies" any message under A = identity
    pub.verify(forged, b"any message")  # OpenSSL accepts it (no exception): why admission uses libsodium
    assert not keys.verifier(pub)(forged, b"any message")
    assert not keys.verify_sig(pub, forged.hex(), b"any message")


def test_openssl_fallback_gives_the_same_results(monkeypatch):
    key = Ed25519PrivateKey.generate()
    fast_sig = keys.signer(key)(b"m")
    monkeypatch.setattr(keys, "_sodium_open", None)
    assert keys.signer(key)(b"m") == fast_sig
    assert keys.verifier(key.public_key())(fast_sig, b"m")
    assert not keys.verifier(key.public_key())(fast_sig, b"n")
    assert keys.verify_sig(key.public_key(), fast_sig.hex(), b"m")
