"""The station's local alarm panel on GPIO: green/amber/red LEDs, a buzzer, an acknowledge
button and a door contact, via gpiozero.

Alarms must work with no network, broker or ledger, so the panel is driven from the alarm
engine's ``active()`` list in-process. Exactly one LED is lit: red while an alarm-severity
condition is present, amber while anything else is open (a warning, or an alarm that
cleared but nobody acknowledged: someone must check the vaccines), green when nothing is
open. The buzzer sounds while an alarm-severity condition is present and unacknowledged;
acknowledging silences it, and an escalation needs a fresh acknowledgement.

Pins are passed in (BCM numbers or gpiozero names) with an optional ``pin_factory``; tests
use gpiozero's ``MockFactory``. Button callbacks run on gpiozero's thread: they must only
hand the event over (e.g. ``queue.put``) to the thread that owns the engine. Keep a reference
to every object here: gpiozero releases a device's pin when the device is garbage-collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gpiozero import LED, Button, Buzzer  # type: ignore[import-untyped]
from gpiozero.pins import Factory  # type: ignore[import-untyped]

Pin = int | str
OK, WARNING, ALARM = "ok", "warning", "alarm"


def panel_state(active: Iterable[Mapping[str, Any]]) -> tuple[str, bool]:
    """(level, buzzer) for a list of ``AlarmEngine.active()`` views."""
    level, buzz = OK, False
    for a in active:
        present = a.get("state") in ("raised", "escalated")
        if present and a.get("severity") == "alarm":
            level = ALARM
            buzz = buzz or not a.get("acknowledged", False)
        elif level == OK:
            level = WARNING
    return level, buzz


class AlarmPanel:
    def __init__(self, *, green: Pin, amber: Pin, red: Pin, buzzer: Pin | None = None,
                 pin_factory: Factory | None = None) -> None:
        self._leds = {level: LED(pin, pin_factory=pin_factory)
                      for level, pin in ((OK, green), (WARNING, amber), (ALARM, red))}
        self._buzzer = Buzzer(buzzer, pin_factory=pin_factory) if buzzer is not None else None
        self.level = ""
        self.buzzing = False
        self.update(())  # start green: the panel itself says it is alive

    def update(self, active: Iterable[Mapping[str, Any]]) -> str:
        """Show ``active`` (the engine's open alarms); returns the level shown."""
        self.level, self.buzzing = panel_state(active)
        for name, led in self._leds.items():
            led.value = name == self.level  # idempotent: safe to call on every loop
        if self._buzzer is not None:
            self._buzzer.value = self.buzzing
        return self.level

    def close(self) -> None:
        for led in self._leds.values():
            led.close()
        if self._buzzer is not None:
            self._buzzer.close()


class AckButton:
    """Momentary push button to ground (internal pull-up); each press calls ``on_ack()``."""

    def __init__(self, pin: Pin, on_ack: Callable[[], None], *, bounce_time: float | None = 0.05,
                 pin_factory: Factory | None = None) -> None:
        self._button = Button(pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory)
        self._button.when_pressed = lambda: on_ack()

    def close(self) -> None:
        self._button.close()


class DoorContact:
    """Reed switch to ground: closed (pressed) while the magnet is near, i.e. the door shut.

    ``on_change(sensor, is_open)`` fires on every change; turn it into a sealed reading with
    ``door_body`` so the alarm engine (and any auditor) sees the door like any other sensor.
    """

    def __init__(self, pin: Pin, sensor: str, on_change: Callable[[str, bool], None], *,
                 closed_when_pressed: bool = True, bounce_time: float | None = 0.05,
                 pin_factory: Factory | None = None) -> None:
        self.sensor = sensor
        self._closed_when_pressed = closed_when_pressed
        self._button = Button(pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory)
        self._button.when_pressed = lambda: on_change(sensor, self.is_open)
        self._button.when_released = lambda: on_change(sensor, self.is_open)
        self.pin = str(pin)

    @property
    def is_open(self) -> bool:
        return bool(self._button.is_pressed) != self._closed_when_pressed

    def close(self) -> None:
        self._button.close()


def door_body(sensor: str, is_open: bool, pin: Pin) -> dict[str, Any]:
    """A ``reading`` body (kind door, value 0/1) for a door contact wired to the gateway."""
    return {"type": "reading", "sensor": sensor, "kind": "door", "value": 1 if is_open else 0,
            "unit": "", "source": {"adapter": "gpio", "transport": "gpio", "topic": f"gpio:{pin}",
                                   "auth": "local"}}
