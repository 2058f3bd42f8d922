"""Errors of the trust package, as a tree.

    TracesealError
    ├── EncodingError          a value cannot be put in canonical form (e.g. a float)
    ├── KeyFileError           a key file is missing, malformed or readable by others
    ├── ProofError             a Merkle proof is malformed or does not lead to the root
    ├── LedgerError            a ledger backend failed (I/O, RPC, wrong chain)
    │   ├── LedgerUnavailable  the ledger cannot be reached now (or not within the deadline); retry later
    │   └── BadNodeReply       a node answered outside the protocol: too large, not JSON-RPC, a wrong
    │                          type, or a number out of range (a timestamp in 2300); retry later
    └── VerificationError      a bundle step failed; carries the step number and name

Messages quote the values that mismatched ("got X, want Y"): an auditor reading a
failed report must see *what* differed, not only that something did.
"""

from __future__ import annotations


class TracesealError(Exception):
    """Root of every error raised on purpose by traceseal."""


class EncodingError(TracesealError, ValueError):
    """A value that cannot be canonicalised (floats, non-string keys, huge ints)."""


class KeyFileError(TracesealError):
    """A key file is missing, malformed, or has permissions that leak it."""


class ProofError(TracesealError, ValueError):
    """A Merkle inclusion or consistency proof failed."""


class LedgerError(TracesealError):
    """A ledger backend could not do what was asked."""


class LedgerUnavailable(LedgerError):
    """The ledger is unreachable right now; the caller should back off and retry."""


class BadNodeReply(LedgerError):
    """A ledger node's reply cannot be taken as it is: larger than the cap, not JSON-RPC, a
    value of the wrong type, or a number outside its sane range. A node is never trusted to
    be well-behaved: this error, not a crash three calls later, is what a hostile one gets."""


class VerificationError(TracesealError):
    """One verification step failed.

    ``step`` is the numbered step of docs/proof-format.md §Verification, ``name`` its
    short name, so a report can say exactly where a bundle broke.
    """

    def __init__(self, step: int, name: str, message: str) -> None:
        super().__init__(f"step {step} ({name}): {message}")
        self.step = step
        self.name = name
        self.message = message
