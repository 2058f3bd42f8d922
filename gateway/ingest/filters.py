"""Keep what a person did, not every line a device repeats.

A scale polled every second re-reports the same weight 86,400 times a day; scanners and
RFID readers repeat a read while the item is in the field. Only these become records:

- a weight that is **stable** (``attrs["stable"]`` True), above zero, and differs from the
  last recorded stable weight of that scale or follows an unstable or empty reading (a new
  load was placed); unstable weights and an empty pan never become records;
- a scan, tag or badge read, unless the same reader saw the same thing within
  ``duplicate_scan_s`` seconds.

Dropped observations are counted, not quarantined: they are not bad input. The state is in
memory; after a restart the first stable weight of each scale is recorded again (harmless).
"""

from __future__ import annotations

from gateway.core.observation import Observation
from gateway.ingest.settings import FilterConfig

_IDENTITY_KINDS = {"scan", "rfid", "badge"}


class ChangeFilter:
    def __init__(self, cfg: FilterConfig) -> None:
        self.cfg = cfg
        self._last_weight: dict[str, int | None] = {}
        self._last_read: dict[tuple[str, str], int] = {}

    def snapshot(self) -> tuple[dict[str, int | None], dict[tuple[str, str], int]]:
        """State to put back if the batch that changes it is not committed (pipeline rollback)."""
        return dict(self._last_weight), dict(self._last_read)

    def restore(self, state: tuple[dict[str, int | None], dict[tuple[str, str], int]]) -> None:
        self._last_weight, self._last_read = dict(state[0]), dict(state[1])

    def keep(self, obs: Observation, now_ms: int) -> str | None:
        """None to keep ``obs``; otherwise the counter name explaining why it was dropped."""
        if obs.kind == "weight":
            if obs.attrs.get("stable") is False:
                self._last_weight[obs.sensor] = None  # load changing: the next stable weight is new
                return "dropped.unstable-weight"
            if obs.value is not None and obs.value <= 0:
                self._last_weight[obs.sensor] = None  # pan emptied: the next load is a new one
                return "dropped.empty-scale"
            if not self.cfg.record_repeat_weights and self._last_weight.get(obs.sensor) == obs.value:
                return "dropped.repeat-weight"
            self._last_weight[obs.sensor] = obs.value
            return None
        if obs.kind in _IDENTITY_KINDS and self.cfg.duplicate_scan_s > 0:
            ident = str(sorted(obs.attrs.items()))
            key = (obs.sensor, ident)
            last = self._last_read.get(key)
            self._last_read[key] = now_ms
            if len(self._last_read) > 10_000:  # bounded: forget reads older than the window
                horizon = now_ms - self.cfg.duplicate_scan_s * 1000
                self._last_read = {k: t for k, t in self._last_read.items() if t >= horizon}
            if last is not None and now_ms - last < self.cfg.duplicate_scan_s * 1000:
                return "dropped.duplicate-read"
        return None
