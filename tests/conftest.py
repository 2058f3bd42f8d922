from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.testing.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real Mosquitto for the session; tests keep apart by unique topics and client ids."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as m:
        yield m


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that restart or stop it."""
    m = Mosquitto(tmp_path / "mosquitto")
    m.start()
    yield m
    m.stop()
