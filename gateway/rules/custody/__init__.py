"""Medical-waste chain of custody: who handed which bin over, at what weight, where and when.

Pure, I/O-free modules (time is always passed in), fed with the gateway's sealed records:

- ``operators``  badge allow-list (``[[operators]]``), operator sessions, refusals
- ``settings``   ``[custody]`` stations, command barcodes, reconciliation tolerances
- ``events``     ``CustodyStation``: badge + bin + stable weight (+ category) -> custody body
- ``reconcile``  per-bin weight loss, missing and unknown bins (one gateway or several)
- ``manifest``   the route as a paper manifest shows it; ``check_manifest`` over bundles
"""

from gateway.rules.custody.events import CustodyStation
from gateway.rules.custody.operators import Operator, parse_operators
from gateway.rules.custody.reconcile import Reconciler, reconcile
from gateway.rules.custody.settings import (
           CustodyConfig,
           CustodyStationConfig,
           ReconcileConfig,
           parse_custody,
)

__all__ = [
           "CustodyConfig",
           "CustodyStation",
           "CustodyStationConfig",
           "Operator",
           "ReconcileConfig",
           "Reconciler",
           "parse_custody",
           "parse_operators",
           "reconcile",
]
