"""Cut sealed records into blocks: an RFC 9162 root per block, headers chained by hash.

A block is cut when ``max_records`` are waiting or the oldest waiting record is
``max_seconds`` old (or at once, for an alarm). The header carries the previous header's
hash, so deleting, reordering or inserting a block breaks every later link; the newest
header's hash is what gets anchored, and it vouches for all earlier ones.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import Clock
from gateway.journal import BlockRow, Journal, RecordRow
from ledger_client.canonical import canonical, header_hash, header_message
from ledger_client.keys import public_hex, signer
from ledger_client.merkle import hash_leaf, root

ZERO_HASH = "00" * 32


class BlockSealer:
    def __init__(self, journal: Journal, key: Ed25519PrivateKey, gateway_id: str, clock: Clock,
                 max_records: int, max_seconds: int) -> None:
        self.journal = journal
        self._key = key
        self._sign = signer(key)
        self._pub = public_hex(key)
        self.gateway_id = gateway_id
        self.clock = clock
        self.max_records = max_records
        self.max_ms = max_seconds * 1000

    def maybe_seal(self, *, force: bool = False) -> list[BlockRow]:
        """Seal every block that is due; ``force`` seals whatever is waiting (alarms, shutdown)."""
        out: list[BlockRow] = []
        while True:
            last = self.journal.last_block()
            after = -1 if last is None else last.last_seq
            n, first_t = self.journal.unsealed_span(after)
            if n == 0:
                return out
            due = n >= self.max_records or force or (
                first_t is not None and self.clock.now_ms() - first_t >= self.max_ms)
            if not due:
                return out
            out.append(self._seal(last, after + 1, after + min(n, self.max_records), urgent=force))

    def _seal(self, last: BlockRow | None, first: int, last_seq: int, *, urgent: bool) -> BlockRow:
        rows = self.journal.records_range(first, last_seq)
        # seqs are dense (assigned under the single writer), but check: a hole would make
        # leaf indexes lie about sequence numbers
        if not rows or rows[0].seq != first or rows[-1].seq != last_seq or len(rows) != last_seq - first + 1:
            raise RuntimeError(f"journal seq range {first}..{last_seq} is not dense")
        row = self.block_row(last, rows)
        self.journal.insert_block(row, urgent=urgent)
        return row

    def block_row(self, last: BlockRow | None, rows: list[RecordRow]) -> BlockRow:
        """The signed block after ``last`` holding ``rows`` (not yet stored)."""
        first, last_seq = rows[0].seq, rows[-1].seq
        n = 0 if last is None else last.block + 1
        sealed_ms = self.clock.now_ms()
        header = {
            "v": 1,
            "gateway": self.gateway_id,
            "block": n,
            "first_seq": first,
            "last_seq": last_seq,
            "size": len(rows),
            "root": root([hash_leaf(bytes(r.body)) for r in rows]).hex(),
            "prev": ZERO_HASH if last is None else bytes(last.hash).hex(),
            "first_time_ms": min(r.time_ms for r in rows),
            "last_time_ms": max(r.time_ms for r in rows),
            "sealed_ms": sealed_ms,
            "clock_synced": self.clock.synced(),
            "key": self._pub,
        }
        data = canonical(header)
        return BlockRow(n, first, last_seq, data, self._sign(header_message(data)), header_hash(data), sealed_ms)
