"""Tasmota, Zigbee2MQTT and Shelly adapters against every sample in mqtt_payloads.json."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from adapter_testkit import assert_observation_ok, samples

from gateway.adapters import shelly, tasmota, zigbee2mqtt
from gateway.adapters._common import MeasureSpec, number
from gateway.core.errors import ParseError

MQTT = samples("mqtt_payloads.json")
PARSERS = {"tasmota": tasmota.parse, "zigbee2mqtt": zigbee2mqtt.parse, "shelly_gen2": shelly.parse}


def milli(x: Any) -> int:
    """Expected values in the sample files are JSON numbers: read them as exact decimals."""
    return int(Decimal(str(x)) * 1000)


@pytest.mark.parametrize("sample", MQTT, ids=[s["id"] for s in MQTT])
def test_every_mqtt_sample(sample: dict[str, Any]) -> None:
    obs = PARSERS[sample["ecosystem"]](sample["topic"], sample["payload"].encode())
    for o in obs:
        assert_observation_ok(o)
    exp = sample["expected"]
    eco = sample["ecosystem"]
    if eco == "tasmota" and "readings" in exp:
        assert [(o.attrs["key"], o.attrs.get("rom_id"), o.value) for o in obs] == [
            (r["sensor_key"], r["sensor_id"], milli(r["temperature"])) for r in exp["readings"]
        ]
        assert all(
            o.kind == "temperature" and o.unit == "mC" and o.sensor_time_ms is None for o in obs
        )
        if "device_time_local" in exp:
            assert obs[0].attrs["device_time"] == exp["device_time_local"]
    elif eco == "tasmota":
        assert len(obs) == exp["reading_count"]
        # keyed by the probe's ROM id, never by the DS18B20-<n> position
        assert {o.attrs["rom_id"]: o.value for o in obs} == {
            k: milli(v) for k, v in exp["by_id"].items()
        }
        assert {o.sensor for o in obs} == {f"tasmota:28-{k.lower()}" for k in exp["by_id"]}
    elif eco == "zigbee2mqtt":
        by_kind = {o.kind: o.value for o in obs}
        assert by_kind["temperature"] == milli(exp["temperature"])  # 0.08 °C → 80 m°C
        assert by_kind["humidity"] == 0  # 0.01 %RH = 0.1 ‰ → rounds half-even to 0
        assert "pressure" not in by_kind  # not in the default field table
    else:  # the Shelly frame sample carries a switch only: a valid frame with nothing to record
        assert exp["method"] == "NotifyStatus" and exp["component"] == "switch:1"
        assert obs == []


def test_tasmota_probe_renumbering_keeps_sensor_ids() -> None:
    """Adding a probe renumbers DS18B20-<n>; the sensor ids must not move with the numbers."""
    before = (b'{"DS18B20-1":{"Id":"0300A279BDBD","Temperature":4.0},'
              b'"DS18B20-2":{"Id":"0319A2794947","Temperature":-18.5}}')
    after = (
        b'{"DS18B20-1":{"Id":"011833902FFF","Temperature":20.0},"DS18B20-2":{"Id":"0300A279BDBD","Temperature":4.0},'
        b'"DS18B20-3":{"Id":"0319A2794947","Temperature":-18.5}}'
    )
    ids_before = {o.sensor: o.value for o in tasmota.parse("tele/cold/SENSOR", before)}
    ids_after = {o.sensor: o.value for o in tasmota.parse("tele/cold/SENSOR", after)}
    assert ids_before == {"tasmota:28-0300a279bdbd": 4000, "tasmota:28-0319a2794947": -18500}
    assert {k: ids_after[k] for k in ids_before} == ids_before


def test_tasmota_custom_topic_and_field_table() -> None:
    """Tables are configurable per device: a site prefix and a pressure field."""

    def pressure(obj: Any, msg: Any) -> int | None:
        v = number(obj, "Pressure")
        return None if v is None else int(v * 100)  # hPa → Pa, exact for ≤2 decimals

    parser = tasmota.TasmotaParser(
        topics=(tasmota.TopicSpec(re.compile(r"^site7/(?P<device>[^/]+)/telemetry$")),),
        fields=(*tasmota.FIELDS, MeasureSpec("Pressure", "pressure", "Pa", pressure)),
    )
    obs = parser(
        "site7/lab/telemetry", b'{"BME280":{"Temperature":21.5,"Humidity":40.0,"Pressure":1013.25}}'
    )
    assert [(o.kind, o.value, o.unit) for o in obs] == [
        ("temperature", 21500, "mC"),
        ("humidity", 400, "permille"),
        ("pressure", 101325, "Pa"),
    ]
    with pytest.raises(ParseError) as info:
        parser("tele/lab/SENSOR", b"{}")
    assert info.value.code == "bad-topic"


def test_zigbee2mqtt_custom_base_topic() -> None:
    parser = zigbee2mqtt.Zigbee2MqttParser(base_topic="z2m-ward3")
    obs = parser("z2m-ward3/vaccine fridge", b'{"temperature":5.21}')
    assert [(o.sensor, o.value) for o in obs] == [("zigbee2mqtt:vaccine fridge", 5210)]


def test_shelly_custom_components() -> None:
    """A deployment can drop battery readings (or add components) without code changes."""
    parser = shelly.ShellyParser(components={"temperature": shelly.COMPONENTS["temperature"]})
    frame = (
        b'{"src":"d","method":"NotifyFullStatus","params":{"ts":10,'
        b'"devicepower:0":{"battery":{"percent":80}},"temperature:0":{"tC":4.35}}}'
    )
    assert [(o.kind, o.value, o.sensor_time_ms) for o in parser("d/events/rpc", frame)] == [
        ("temperature", 4350, 10000)
    ]


def test_shelly_unixtime_null_after_wake_uses_ts() -> None:
    frame = (
        b'{"src":"ht","method":"NotifyFullStatus","params":{"ts":1680962879.62,'
        b'"sys":{"unixtime":null},"temperature:0":{"id":0,"tC":19.8,"tF":67.6}}}'
    )
    (obs,) = shelly.parse("ht/events/rpc", frame)
    assert obs.sensor_time_ms == 1680962879620
    assert obs.value == 19800  # tC preferred over tF (67.6 °F would give 19778)
