"""Record signatures on several threads, and the key each block's signatures are checked
with. ``PARALLEL_*`` are read here at call time: a test that wants the threaded path
patches THIS module (``ledger_client.verify.records``), not the package."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..canonical import canonical, record_message
from ..keys import public_from_hex, verify_sig
from ..rotation import KeyChain

PARALLEL_MIN_RECORDS = 2_000  # below this a thread pool costs more than it saves
PARALLEL_CHUNK = 500  # records per task: small enough that the caller's loop rarely waits


def record_signatures(records: list[Any], key_of: Callable[[Any], Any]
                       ) -> tuple[list[bytes | None], list[bool], Callable[[int], None]]:
    """(canonical bytes or None, signature valid, wait) per record entry, in bundle order.

    Ed25519 is most of a record's cost, and libsodium releases the GIL while it verifies, so
    a long bundle is checked on every core (two threads verified 1.94x as fast as one on this
    2-vCPU machine, bench/README.md). Chunks run ahead of the caller's loop, which calls
    ``wait(i)`` before it reads entry ``i``: progress reports stay in step with the work, and
    each entry is still checked exactly once, with its block's key, and reported in bundle
    order exactly as a sequential run would. An entry that cannot be canonicalised gets None
    and False; the caller reports it as malformed."""
    n = len(records)
    encoded: list[bytes | None] = [None] * n
    ok = [False] * n

    def check(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            entry = records[i]
            try:
                data = canonical(entry["record"])
            except Exception:  # noqa: BLE001  the caller re-raises it as "malformed record"
                continue
            encoded[i] = data
            ok[i] = verify_sig(key_of(entry.get("block")), entry.get("sig", ""), record_message(data))

    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or n < PARALLEL_MIN_RECORDS:
        check(0, n)
        return encoded, ok, lambda i: None
    from concurrent.futures import ThreadPoolExecutor

    step = PARALLEL_CHUNK
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
    futures = [pool.submit(check, lo, min(lo + step, n)) for lo in range(0, n, step)]
    pool.shutdown(wait=False)  # the queued chunks still run; nothing is left behind

    def wait(i: int) -> None:
        futures[i // step].result()  # re-raises a chunk's unexpected error here

    return encoded, ok, wait


def block_keys(chain: KeyChain, pinned: Any) -> Callable[[Any], Any]:
    """The public key each block's signatures are checked with: the chain's key for the
    block, or, when the pin is no key of the chain, the pinned key for every block (§9.2)."""
    cache: dict[str, Any] = {}

    def key_of(block: Any) -> Any:
        if pinned is not None:
            return pinned
        k = chain.key_for(block)
        if k not in cache:
            cache[k] = public_from_hex(k)
        return cache[k]
    return key_of

