"""Simulated traceseal temperature probes (fridges, freezers) publishing signed JSON over MQTT.

Layers, read top to bottom: ``message`` (bytes of one message) -> ``dynamics`` and
``scenarios`` (what the probe measures) -> ``faults`` (bad messages on purpose) ->
``fleet`` (which bytes on which topic, tick by tick) -> ``publisher`` (MQTT) -> ``cli``.
"""

from .message import build_message, door, temperature

__all__ = ["build_message", "door", "temperature"]
