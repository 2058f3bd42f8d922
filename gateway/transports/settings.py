"""Reading a broker connection's keys, the same way for the gateway's ``[mqtt]`` and the
archive's ``[broker]`` (so the archive shares the rule without importing the gateway's
config assembler)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.core.settings import MqttConfig
from gateway.core.table import Table, positive


def broker_table(m: Table, *, client_id: Callable[[], str], topics: Callable[[], tuple[str, ...]],
                 receive_maximum: int, session_expiry_s: int) -> MqttConfig:
    """The keys a broker connection takes, read the same way for the gateway's ``[mqtt]`` and
    the archive's ``[broker]``. ``client_id`` and ``topics`` differ in default and rule, so the
    caller reads them (called in key order, so the first bad key is still the one reported)."""
    return MqttConfig(
        host=m.get("host", str, "127.0.0.1"),
        port=m.get("port", int, 1883, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        client_id=client_id(),
        topics=topics(),
        username=m.get("username", str, None),
        password_file=m.path_("password_file", None),
        tls_ca=m.path_("tls_ca", None), tls_cert=m.path_("tls_cert", None), tls_key=m.path_("tls_key", None),
        receive_maximum=m.get("receive_maximum", int, receive_maximum, check=lambda v: 1 <= v <= 65535,
                              why="must be in 1..65535"),
        keepalive=m.get("keepalive", int, 30, check=positive, why="must be positive"),
        session_expiry_s=m.get("session_expiry_s", int, session_expiry_s, check=positive, why="must be positive"),
    )
