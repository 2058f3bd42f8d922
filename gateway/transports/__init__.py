"""Transports move bytes and never parse: MQTT, serial, 1-wire."""
