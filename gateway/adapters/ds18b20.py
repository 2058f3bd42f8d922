"""Linux w1_therm sysfs reads of a DS18B20 → one temperature in m°C, or why not.

Two files, told apart by content:

* ``w1_slave`` (two lines)::

      73 01 4b 46 7f ff 0d 10 41 : crc=41 YES
      73 01 4b 46 7f ff 0d 10 41 t=23187

  Line 1 is this read's scratchpad and the kernel's CRC verdict; line 2 repeats bytes (the
  last *good* scratchpad on current kernels) and ``t`` computed from this read.
* ``temperature`` (one integer in m°C), no CRC to check.

Why the checks, in order (each a ParseError code):

``empty-read``       current kernels return an empty file when every retry failed.
``bad-format``       anything that is not the layout above (truncated, garbled).
``crc-failed``       the kernel said ``NO``, or it said ``YES`` but CRC-8/MAXIM of bytes
                     0-7 is not byte 8 (we recompute: the verdict is only text).
``all-zero-read``    a bus stuck low reads all zeros, and 00 is the CRC of zeros, so the
                     kernel says ``crc=00 YES t=0``: indistinguishable from 0 °C except
                     by the bytes.
``power-on-value``   ``t=85000`` (register 0x0550) with a valid CRC is the power-on reset
                     value: the conversion never ran (e.g. Linux 6.1 read-timing regression).
``conversion-failed`` register 0x07FF with byte 6 = 0x0C (kernel's own result check).
``inconsistent``     ``t`` disagrees with the scratchpad bytes of line 1.
``out-of-range``     outside the DS18B20's −55…+125 °C.

The kernel computes ``t = raw × 1000 / 16`` in C integer division, i.e. truncated toward
zero (−4.8125 °C → −4812); we cross-check with the same rule rather than rounding.
"""

from __future__ import annotations

import re

from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "ds18b20"
MAX_FILE = 256
POWER_ON_MC = 85000
MIN_MC, MAX_MC = -55000, 125000

_LINE1 = re.compile(r"^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$")
_LINE2 = re.compile(r"^((?:[0-9a-f]{2} ){9})t=(-?\d{1,7})$")
_TEMPERATURE = re.compile(r"^-?\d{1,7}$")
_DEVICE = re.compile(r"([0-9a-f]{2}-[0-9a-f]{12})")


def _fail(code: str, message: str, field: str | None = None) -> ParseError:
    return ParseError(NAME, code, message, field=field)


def crc8_maxim(data: bytes) -> int:
    """Dallas/Maxim 1-Wire CRC-8 (polynomial x⁸+x⁵+x⁴+1, reflected 0x8C, init 0)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def kernel_millidegrees(scratchpad: bytes) -> int:
    """``t`` as w1_therm computes it for a DS18B20: int16 LE × 1000 / 16, toward zero."""
    raw = int.from_bytes(scratchpad[0:2], "little", signed=True)
    q = abs(raw) * 1000 // 16
    return -q if raw < 0 else q


def sensor_id(path_or_name: str) -> str:
    """``w1:28-031655c9d5ff`` from a sysfs path or device name; else ``w1:<as given>``."""
    m = _DEVICE.search(path_or_name.lower())
    return f"w1:{m.group(1)}" if m else f"w1:{path_or_name}"


def _check_value(t: int) -> None:
    if t == POWER_ON_MC:
        raise _fail("power-on-value", "t=85000 is the DS18B20 power-on reset value", "t")
    if not MIN_MC <= t <= MAX_MC:
        raise _fail("out-of-range", f"t={t} outside {MIN_MC}..{MAX_MC}", "t")


def _w1_slave(lines: list[str]) -> tuple[int, dict[str, str]]:
    if len(lines) != 2:
        raise _fail("bad-format", f"{len(lines)} lines, want 2")
    m1, m2 = _LINE1.match(lines[0]), _LINE2.match(lines[1])
    if not m1:
        raise _fail("bad-format", f"line 1 {lines[0][:60]!r} is not '<9 bytes> : crc=xx YES|NO'")
    if not m2:
        raise _fail("bad-format", f"line 2 {lines[1][:60]!r} is not '<9 bytes> t=<int>'")
    pad = bytes.fromhex(m1.group(1))
    crc_text, verdict, t = int(m1.group(2), 16), m1.group(3), int(m2.group(2))
    if verdict != "YES":
        raise _fail("crc-failed", f"kernel reports crc={crc_text:02x} NO", "crc")
    computed = crc8_maxim(pad[:8])
    if computed != pad[8] or crc_text != pad[8]:
        raise _fail(
            "crc-failed",
            f"CRC-8 of bytes 0-7 is {computed:02x}, byte 8 is {pad[8]:02x}, "
            f"kernel printed {crc_text:02x}",
            "crc",
        )
    if pad == bytes(9):
        raise _fail(
            "all-zero-read", "all scratchpad bytes are 00 (bus stuck low); t=0 is not a reading"
        )
    register = int.from_bytes(pad[0:2], "little")
    if register == 0x07FF and pad[6] == 0x0C:
        raise _fail("conversion-failed", "register 0x07FF with byte 6 = 0x0c", "t")
    _check_value(t)
    if not pad[4] & 0x80 and kernel_millidegrees(pad) != t:  # bit 7 set: GX20MH01 clone modes
        raise _fail("inconsistent", f"t={t} but scratchpad gives {kernel_millidegrees(pad)}", "t")
    return t, {"scratchpad": pad.hex(), "resolution_bits": str(9 + ((pad[4] >> 5) & 3))}


def parse(path: str, raw: bytes) -> list[Observation]:
    """One read of ``w1_slave`` or ``temperature`` at ``path`` → one temperature observation."""
    if len(raw) > MAX_FILE:
        raise _fail("bad-format", f"{len(raw)} bytes > {MAX_FILE}")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _fail("bad-format", f"byte {exc.start} is not ASCII") from exc
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines:
        raise _fail("empty-read", "the kernel returned no data (read failed)")
    attrs: dict[str, str] = {"file": "w1_slave"}
    if len(lines) == 1 and _TEMPERATURE.match(lines[0]):
        t = int(lines[0])
        _check_value(t)
        attrs["file"] = "temperature"
    else:
        t, extra = _w1_slave(lines)
        attrs.update(extra)
    return [Observation(sensor_id(path), "temperature", t, "mC", NAME, attrs=attrs)]
