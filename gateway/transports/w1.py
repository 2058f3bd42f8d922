"""1-Wire temperature probes via Linux sysfs → raw file bytes, polled on one thread.

Every ``interval_s`` the poller globs ``<base_dir>/<pattern>/<filename>`` afresh (probes
are hot-plugged on a bus; the kernel adds and removes their directories) and hands each
file's bytes, unparsed, to ``on_read(path, raw)``; the ``ds18b20`` adapter decides what
they mean. An empty read is delivered as is: current kernels signal a failed conversion
with an empty file, and that is evidence the adapter turns into ``empty-read``. An
``OSError`` (the probe vanished between glob and read) is only counted and logged.

Reading ``w1_slave`` blocks ~750 ms per probe while the kernel converts, so the poll
interval should exceed 0.75 s × number of probes; the base dir is configurable so tests
(and the demo) can run against a plain directory tree.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("traceseal.w1")

ReadCallback = Callable[[str, bytes], None]
MAX_READ = 4096


class W1Poller:
    def __init__(
        self,
        on_read: ReadCallback,
        *,
        base_dir: str = "/sys/bus/w1/devices",
        pattern: str = "28-*",
        filename: str = "w1_slave",
        interval_s: float = 30.0,
    ) -> None:
        self.on_read = on_read
        self.base_dir = base_dir
        self.pattern = pattern
        self.filename = filename
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.reads = 0
        self.read_errors = 0
        self.callback_errors = 0

    def paths(self) -> list[str]:
        return sorted(
            glob.glob(os.path.join(glob.escape(self.base_dir), self.pattern, self.filename))
        )

    def poll_once(self) -> int:
        """Read every probe once; returns how many files were delivered."""
        delivered = 0
        for path in self.paths():
            if self.stop_event.is_set():
                break
            try:
                with open(path, "rb") as f:
                    raw = f.read(MAX_READ)
            except OSError as exc:
                self.read_errors += 1
                log.warning("w1: read %s failed: %s", path, exc)
                continue
            self.reads += 1
            delivered += 1
            try:
                self.on_read(path, raw)
            except Exception:  # a consumer bug must not stop the other probes being read
                self.callback_errors += 1
                log.exception("w1: on_read failed for %s", path)
        return delivered

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.poll_once()
            self.stop_event.wait(self.interval_s)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="w1", daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout_s)
