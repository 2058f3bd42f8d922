"""Verify a ``traceseal-bundle/1`` with no access to the gateway: a numbered checklist.

Steps (docs/proof-format.md §Verification):

1. format         the bundle parses; the gateway key is well formed (and equals the pinned key)
2. record-sigs    every record's Ed25519 signature by the gateway key
3. header-sigs    every block header's signature by the gateway key
4. inclusion      every record's RFC 9162 inclusion proof leads to its block's root
5. chain          headers are consecutive: block numbers, prev-hash links, sequence ranges
6. anchors        every anchor is valid on its ledger and names a header in the bundle
7. coverage       every record's block is at or before an anchored block (via the chain)
8. anchor-time    records and headers claim no time after the anchor that covers them
9. selection      the records are what the selection says (sensor, range, lot) and the
                  blocks cover the whole selected range, so gaps show

Every step runs even after an earlier one fails, so one report shows everything wrong;
the bundle verifies only when every step passes AND the gateway key was pinned: without a
pin the bundle vouches for itself (anyone can make one that passes every step), so the
result is "intact, key not pinned" (``Report.result``), never "verified".

Where things live: ``checks`` the rules, pure, one owner each (the archive calls them too);
``steps`` one function per step above; ``records`` the threaded record signatures;
``selection`` step 9; ``report`` the result types; ``anchors`` the ledger checkers;
``strictjson`` reading a bundle's text; ``sets`` ``traceseal-set/1``. This package never
imports ``gateway``.
"""

from __future__ import annotations

from .anchors import AnchorChecker, default_checkers
from .checks import (
    ANCHOR_TIME_MAX_MS,
    ANCHOR_TIME_MIN_MS,
    ZERO_HASH,
    Problem,
    _hex32,
    _hex32_list,
    check_anchor_entry,
    check_anchor_time,
    check_header,
    check_hex_case,
    check_inclusion,
    check_link,
    check_record,
    check_root,
    check_rotation_boundary,
    check_size,
)
from .report import FAILED, FORMAT, INTACT_NOT_PINNED, STEPS, VERIFIED, Report, StepResult
from .sets import SET_FORMAT, SetReport, verify_set
from .steps import verify_bundle
from .strictjson import MAX_DEPTH, json_depth, loads_strict

__all__ = [
    "ANCHOR_TIME_MAX_MS", "ANCHOR_TIME_MIN_MS", "FAILED", "FORMAT", "INTACT_NOT_PINNED", "MAX_DEPTH",
    "SET_FORMAT", "STEPS", "VERIFIED", "ZERO_HASH", "AnchorChecker", "Problem", "Report", "SetReport",
    "StepResult", "_hex32", "_hex32_list", "check_anchor_entry", "check_anchor_time", "check_header",
    "check_hex_case", "check_inclusion", "check_link", "check_record", "check_root",
    "check_rotation_boundary", "check_size", "default_checkers", "json_depth", "loads_strict",
    "verify_bundle", "verify_set",
]
