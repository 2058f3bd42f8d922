"""Errors of the firmware simulator, as a tree.

    SimError
    ├── SimConfigError   bad options: unknown scenario, bad fault spec, missing key file
    └── PublishError     the broker refused us, or a PUBACK did not come in time

Everything the CLI prints on failure comes from one of these; messages quote the values
that were wrong so an operator can fix the command line without reading code.
"""

from __future__ import annotations


class SimError(Exception):
    """Root of every error the simulator raises on purpose."""


class SimConfigError(SimError, ValueError):
    """An option or file the simulator was given cannot be used."""


class PublishError(SimError):
    """The broker could not be reached or did not acknowledge a QoS 1 message in time."""
