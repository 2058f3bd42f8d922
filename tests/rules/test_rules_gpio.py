"""The local panel on gpiozero's MockFactory: LED and buzzer pin states per alarm state,
the acknowledge button and the door contact driven through their pins."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
from coldchain_kit import MIN, T0, Station
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from gateway.rules.alarms import AlarmEngine
from gateway.rules.units import parse_units
from gateway.station.gpio import AckButton, AlarmPanel, DoorContact, door_body

GREEN, AMBER, RED, BUZZER, ACK, DOOR = 5, 6, 13, 19, 27, 17


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = old


def lit(f: MockFactory) -> tuple[bool, bool, bool, bool]:
    return tuple(bool(f.pin(p).state) for p in (GREEN, AMBER, RED, BUZZER))  # type: ignore[return-value]


def view(state: str, severity: str = "alarm", acknowledged: bool = False) -> dict[str, Any]:
    return {
        "id": "x",
        "alarm": "high",
        "state": state,
        "severity": severity,
        "acknowledged": acknowledged,
    }


@pytest.mark.parametrize(
    "active,level,want",
    [
        ([], "ok", (True, False, False, False)),
        ([view("raised")], "alarm", (False, False, True, True)),
        ([view("escalated")], "alarm", (False, False, True, True)),
        ([view("raised", acknowledged=True)], "alarm", (False, False, True, False)),
        ([view("cleared")], "warning", (False, True, False, False)),
        ([view("raised", severity="warning")], "warning", (False, True, False, False)),
        (
            [view("cleared"), view("raised", acknowledged=True), view("raised", "warning")],
            "alarm",
            (False, False, True, False),
        ),
    ],
)
def test_pin_states_per_alarm_state(
    pins: MockFactory, active: list[dict[str, Any]], level: str, want: tuple[bool, bool, bool, bool]
) -> None:
    panel = AlarmPanel(green=GREEN, amber=AMBER, red=RED, buzzer=BUZZER)
    assert lit(pins) == (True, False, False, False)  # alive and green from the start
    assert panel.update(active) == level
    assert lit(pins) == want
    assert panel.update([]) == "ok" and lit(pins) == (True, False, False, False)
    panel.close()


def test_button_acknowledges_and_silences_without_clearing(pins: MockFactory) -> None:
    units = parse_units(
        [{"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], "high_delay_s": 0}]
    )
    eng = AlarmEngine(units, power_gap_s=86_400)
    st = Station([eng])
    panel = AlarmPanel(green=GREEN, amber=AMBER, red=RED, buzzer=BUZZER)
    presses: queue.SimpleQueue[str] = queue.SimpleQueue()
    button = AckButton(
        ACK, lambda: presses.put(f"button:GPIO{ACK}")
    )  # gpiozero's thread only hands over

    def writer_loop(now: int) -> None:  # what the lead's writer thread does each turn
        while not presses.empty():
            for body in eng.acknowledge(now, presses.get()):
                st.put(body, now)
        panel.update(eng.active())

    st.reading(T0, "probe-1", "temperature", 9_000)
    writer_loop(T0)
    assert lit(pins) == (False, False, True, True)
    pins.pin(ACK).drive_low()  # pressed (pull-up, button to ground)
    pins.pin(ACK).drive_high()
    writer_loop(T0 + MIN)
    assert lit(pins) == (False, False, True, False)  # silenced, still red: ack does not clear
    assert (
        st.journal.records[-1]["state"] == "acknowledged"
        and st.journal.records[-1]["by"] == "button:GPIO27"
    )
    st.reading(T0 + 2 * MIN, "probe-1", "temperature", 5_000)
    writer_loop(T0 + 2 * MIN)
    assert lit(pins) == (True, False, False, False)  # cleared and already acknowledged: closed
    button.close()


def test_cleared_unacknowledged_alarm_stays_amber_until_pressed(pins: MockFactory) -> None:
    units = parse_units(
        [{"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], "high_delay_s": 0}]
    )
    eng = AlarmEngine(units, power_gap_s=86_400)
    st = Station([eng])
    panel = AlarmPanel(green=GREEN, amber=AMBER, red=RED, buzzer=BUZZER)
    button = AckButton(
        ACK, lambda: [st.put(b, T0 + 3 * MIN) for b in eng.acknowledge(T0 + 3 * MIN, "button")]
    )
    st.reading(T0, "probe-1", "temperature", 9_000)
    st.reading(T0 + MIN, "probe-1", "temperature", 5_000)
    panel.update(eng.active())
    assert lit(pins) == (False, True, False, False)
    pins.pin(ACK).drive_low()
    panel.update(eng.active())
    assert lit(pins) == (True, False, False, False)
    button.close()


def test_door_contact_becomes_door_readings(pins: MockFactory) -> None:
    units = parse_units(
        [
            {
                "id": "fridge-1",
                "profile": "fridge",
                "probes": ["probe-1"],
                "door": "door-1",
                "door_open_s": 120,
            }
        ]
    )
    eng = AlarmEngine(units, power_gap_s=86_400)
    st = Station([eng])
    changes: list[tuple[str, bool]] = []
    contact = DoorContact(DOOR, "door-1", lambda s, is_open: changes.append((s, is_open)))
    pins.pin(DOOR).drive_low()  # magnet at the reed: door shut
    pins.pin(DOOR).drive_high()  # door opens
    assert changes == [("door-1", False), ("door-1", True)] and contact.is_open
    for (sensor, is_open), t in zip(changes, (T0, T0 + MIN)):
        st.put(door_body(sensor, is_open, DOOR), t)
    st.tick(T0 + 3 * MIN)
    assert [(r["alarm"], r["state"], r["at_ms"]) for r in st.journal.of_type("alarm")] == [
        ("door", "raised", T0 + 3 * MIN)
    ]
    assert st.journal.of_type("reading")[-1]["source"] == {
        "adapter": "gpio",
        "transport": "gpio",
        "topic": "gpio:17",
        "auth": "local",
    }
