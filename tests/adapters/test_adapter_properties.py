"""Property tests: any input gives observations or a ParseError, never another exception or a float.

Two kinds of input per adapter: arbitrary bytes, and near-miss inputs built from the
format's own vocabulary (the fuzzing that finds real bugs: a plausible line with one field
wrong). Then exactness properties for the unit conversions and the identity decoders.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from adapter_testkit import assert_observation_ok
from biip.checksums import gs1_standard_check_digit
from epcpy.epc_schemes import GRAI, SGTIN
from epcpy.epc_schemes.grai import GRAIFilterValue
from epcpy.epc_schemes.sgtin import SGTINFilterValue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.adapters import ad_scale, ds18b20, epc, gs1, mtsics, shelly, tasmota, zigbee2mqtt
from gateway.adapters.registry import PARSERS
from gateway.core.errors import ParseError
from gateway.testing.hypo import examples

FUZZ = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TOPICS = {
    "tasmota": "tele/fridge1/SENSOR",
    "zigbee2mqtt": "zigbee2mqtt/fridge",
    "shelly": "shelly-1/events/rpc",
    "mtsics": "scale-1",
    "ad_scale": "bal-1",
    "gs1": "scanner-1",
    "epc": "reader-1",
    "badge": "door-1",
    "ds18b20": "/sys/bus/w1/devices/28-031655c9d5ff/w1_slave",
}
MINE = sorted(TOPICS)


def check(adapter: str, topic: str, raw: bytes) -> list[Any]:
    """The contract: a list of well-formed observations, or a ParseError from this adapter."""
    try:
        out = PARSERS[adapter](topic, raw)
    except ParseError as exc:
        assert exc.adapter == adapter or (adapter == "badge" and exc.adapter == "badge")
        assert CODE.match(exc.code), exc.code
        return []
    assert isinstance(out, list)
    for obs in out:
        assert_observation_ok(obs)
    return out


@FUZZ
@given(adapter=st.sampled_from(MINE), raw=st.binary(max_size=300))
def test_any_bytes(adapter: str, raw: bytes) -> None:
    check(adapter, TOPICS[adapter], raw)


@FUZZ
@given(adapter=st.sampled_from(MINE), topic=st.text(max_size=60), raw=st.binary(max_size=40))
def test_any_topic(adapter: str, topic: str, raw: bytes) -> None:
    check(adapter, topic, raw)


# -- JSON near-misses for the MQTT adapters ------------------------------------------------
KEYS = [
    "Time",
    "TempUnit",
    "DS18B20",
    "DS18B20-1",
    "Id",
    "Temperature",
    "Humidity",
    "StatusSNS",
    "temperature",
    "humidity",
    "battery",
    "linkquality",
    "device",
    "ieeeAddr",
    "last_seen",
    "src",
    "method",
    "params",
    "ts",
    "sys",
    "unixtime",
    "temperature:0",
    "humidity:0",
    "devicepower:0",
    "tC",
    "tF",
    "rh",
    "percent",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "C",
            "F",
            "K",
            "NotifyStatus",
            "NotifyFullStatus",
            "NotifyEvent",
            "2021-01-02T09:09:44",
            "2021-01-02T09:09:44+01:00",
            "0300A279BDBD",
            "",
            "x",
        ]
    ),
    st.text(max_size=10),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)  # Decimals as strings: another near miss


@FUZZ
@given(
    adapter=st.sampled_from(["tasmota", "zigbee2mqtt", "shelly"]),
    payload=st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=6),
)
def test_jsonish_payloads(adapter: str, payload: dict[str, Any]) -> None:
    check(adapter, TOPICS[adapter], _dumps(payload).encode())


# -- line near-misses for the serial adapters ----------------------------------------------
MT_LINE = st.from_regex(
    r"\A(S|SU|SI|T|TI|TA|TAC|Z|ZI|ES|ET|EL|I4|@)( [SDIAL+\-])?( +[+\-]? ?\d{0,8}(\.\d{0,5})?)?"
    r"( (g|kg|mg|lb|oz|ct|PCS|%|t|x))?( \S{1,3})?\r?\n?\Z"
)
AD_LINE = st.from_regex(
    r"\A(ST|US|QT|OL|LO|XX|st)?,((GS|NT|TR|OK|HI|LO|--),)?[+\- ]? *\d{0,9}(\.\d{0,6})?"
    r"(E\+\d\d)? ?,?( {0,2}(g|kg|lb|oz|ct|mom|PC|%|t|N))?\r?\n?\Z"
)


@FUZZ
@given(line=MT_LINE)
def test_mtsics_like_lines(line: str) -> None:
    check("mtsics", "scale-1", line.encode())


@FUZZ
@given(line=AD_LINE)
def test_ad_like_lines(line: str) -> None:
    check("ad_scale", "bal-1", line.encode())


@FUZZ
@given(text=st.text(alphabet="0123456789]dCQE3120\x1dABCX", max_size=70))
def test_gs1_like_scans(text: str) -> None:
    check("gs1", "scanner-1", text.encode())


@FUZZ
@given(
    header=st.sampled_from(["30", "31", "33", "36", "37", "35", "E2", "00"]),
    body=st.text(alphabet="0123456789ABCDEF", min_size=20, max_size=52),
)
def test_epc_like_hex(header: str, body: str) -> None:
    check("epc", "reader-1", (header + body).encode())


@FUZZ
@given(
    pad=st.binary(min_size=9, max_size=9),
    verdict=st.sampled_from(["YES", "NO"]),
    fix_crc=st.booleans(),
    t=st.integers(-200000, 200000),
    use_kernel_t=st.booleans(),
)
def test_w1_slave_like_reads(
    pad: bytes, verdict: str, fix_crc: bool, t: int, use_kernel_t: bool
) -> None:
    if fix_crc:
        pad = pad[:8] + bytes([ds18b20.crc8_maxim(pad[:8])])
    if use_kernel_t:
        t = ds18b20.kernel_millidegrees(pad)
    hexes = " ".join(f"{b:02x}" for b in pad)
    raw = f"{hexes} : crc={pad[8]:02x} {verdict}\n{hexes} t={t}\n".encode()
    out = check("ds18b20", TOPICS["ds18b20"], raw)
    if out:  # accepted only when the kernel said YES, the CRC holds and t agrees
        assert verdict == "YES" and ds18b20.crc8_maxim(pad[:8]) == pad[8]
        assert out[0].value == t != 85000


# -- exactness ------------------------------------------------------------------------------
@settings(max_examples=examples(500), deadline=None)
@given(d=st.decimals(min_value=Decimal(-55), max_value=Decimal(125), places=3))
def test_tasmota_celsius_is_exact(d: Decimal) -> None:
    (obs,) = tasmota.parse("tele/x/SENSOR", f'{{"DS18B20":{{"Temperature":{d}}}}}'.encode())
    assert obs.value == int(d * 1000)


@settings(max_examples=examples(500), deadline=None)
@given(f=st.decimals(min_value=Decimal(-67), max_value=Decimal(257), places=2))
def test_fahrenheit_is_round_half_even_of_the_exact_value(f: Decimal) -> None:
    frame = f'{{"src":"d","method":"NotifyStatus","params":{{"temperature:0":{{"tF":{f}}}}}}}'
    (obs,) = shelly.parse("d/events/rpc", frame.encode())
    exact = (Fraction(f) - 32) * Fraction(5000, 9)
    assert obs.value == round(exact)
    assert abs(obs.value - exact) <= Fraction(1, 2)


@settings(max_examples=examples(300), deadline=None)
@given(h=st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2))
def test_zigbee_humidity_permille(h: Decimal) -> None:
    obs = zigbee2mqtt.parse("zigbee2mqtt/x", f'{{"humidity":{h}}}'.encode())
    assert [o.value for o in obs] == [round(Fraction(h) * 10)]


@settings(max_examples=examples(300), deadline=None)
@given(
    milligrams=st.integers(-(10**9), 10**9),
    unit=st.sampled_from(["g", "kg"]),
    stable=st.booleans(),
    pad=st.integers(1, 8),
)
def test_scale_weights_roundtrip(milligrams: int, unit: str, stable: bool, pad: int) -> None:
    value = Decimal(milligrams).scaleb(-3) / (1000 if unit == "kg" else 1)
    text = f"{value:f}"
    want = round(Fraction(value) * (1000 if unit == "kg" else 1))
    (mt,) = mtsics.parse("s", f"S {'S' if stable else 'D'}{' ' * pad}{text} {unit}\r\n".encode())
    sign = "-" if value < 0 else "+"
    (ad,) = ad_scale.parse(
        "b", f"{'ST' if stable else 'US'},{sign}{text.lstrip('-').rjust(9, '0')} {unit}".encode()
    )
    assert (mt.value, mt.attrs["stable"]) == (want, stable)
    assert (ad.value, ad.attrs["stable"]) == (want, stable)


@settings(max_examples=examples(300), deadline=None)
@given(
    item=st.integers(0, 10**12 - 1),
    lot=st.text(alphabet="ABCDEFGHJK0123456789", min_size=1, max_size=20),
    expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2049, 12, 31)),
    serial=st.text(alphabet="ABCXYZ0123456789", min_size=1, max_size=20),
)
def test_gs1_datamatrix_roundtrip(item: int, lot: str, expiry: date, serial: str) -> None:
    body = f"0{item:012d}"
    gtin = body + str(gs1_standard_check_digit(body))
    scan = f"]d201{gtin}17{expiry:%y%m%d}10{lot}\x1d21{serial}"
    (obs,) = gs1.parse("s", scan.encode())
    assert (obs.attrs["gtin"], obs.attrs["expiry"], obs.attrs["lot"], obs.attrs["serial"]) == (
        gtin,
        expiry.isoformat(),
        lot,
        serial,
    )
    bad = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    try:
        gs1.parse("s", scan.replace(gtin, bad, 1).encode())
    except ParseError as exc:
        assert (exc.code, exc.field) == ("bad-check-digit", "01")
    else:
        raise AssertionError("a wrong check digit was accepted")


@settings(max_examples=examples(200), deadline=None)
@given(filt=st.integers(0, 7), item=st.integers(0, 999_999), serial=st.integers(0, 2**38 - 1))
def test_sgtin96_roundtrip_keeps_the_filter(filt: int, item: int, serial: int) -> None:
    tag = SGTIN.from_epc_uri(f"urn:epc:id:sgtin:0614141.{item:06d}.{serial}")
    hex_text = tag.hex(
        binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96,
        filter_value=list(SGTINFilterValue)[filt],
    )
    (obs,) = epc.parse("r", hex_text.encode())
    assert (obs.attrs["filter"], obs.attrs["serial"], obs.attrs["indicator_item_ref"]) == (
        filt,
        str(serial),
        f"{item:06d}",
    )


@settings(max_examples=examples(200), deadline=None)
@given(filt=st.integers(0, 7), asset=st.integers(0, 99_999), serial=st.integers(0, 2**38 - 1))
def test_grai96_roundtrip(filt: int, asset: int, serial: int) -> None:
    tag = GRAI.from_epc_uri(f"urn:epc:id:grai:0614141.{asset:05d}.{serial}")
    hex_text = tag.hex(
        binary_coding_scheme=GRAI.BinaryCodingScheme.GRAI_96,
        filter_value=list(GRAIFilterValue)[filt],
    )
    (obs,) = epc.parse("r", hex_text.encode())
    assert obs.attrs["filter"] == filt
    assert obs.attrs["tag_uri"] == f"urn:epc:tag:grai-96:{filt}.0614141.{asset:05d}.{serial}"
