"""The station profile survives the trip to an archive unchanged, and a broken one is refused."""

import pytest

from gateway.rules import parse_inventory, parse_units
from gateway.rules.profile import (
    PROFILE_DOMAIN,
    profile_message,
    station_from_profile,
    station_profile,
)
from ledger_client.canonical import HEADER_DOMAIN, RECORD_DOMAIN


def _station():
    units = parse_units([{"id": "fridge-1", "profile": "fridge", "probes": ["p1", "p2"], "door": "d1",
                          "scanners": ["s1"], "high_delay_s": 120},
                         {"id": "fz-1", "profile": "freezer", "probes": ["p3"]}])
    inv = parse_inventory({"expiry_warn_days": 10,
                           "products": [{"gtin": "09506000134352", "name": "MMR", "low_stock": 3}]})
    return units, inv


def test_round_trip_gives_equal_config_objects():
    units, inv = _station()
    u2, i2 = station_from_profile(station_profile("gw-1", units, inv, 1_700_000_000_000))
    assert u2 == units
    assert i2 == inv
    assert u2["fridge-1"].settings.high_delay_s == 120


def test_profile_message_is_domain_separated_and_canonical():
    units, inv = _station()
    msg = profile_message(station_profile("gw-1", units, inv, 7))
    assert msg.startswith(PROFILE_DOMAIN)
    assert PROFILE_DOMAIN not in (RECORD_DOMAIN, HEADER_DOMAIN)
    # canonical: keys sorted, no spaces
    assert b'{"gateway":"gw-1","inventory":' in msg


@pytest.mark.parametrize("broken", [{}, {"units": {"u": {"id": "u"}}, "inventory": {}},
                                    {"units": {}, "inventory": {"no_such_setting": 1}}, {"units": [], "inventory": {}}])
def test_malformed_profile_is_a_value_error(broken):
    with pytest.raises(ValueError, match="malformed station profile"):
        station_from_profile(broken)
