"""A medical-waste route as the devices at each handover would report it. Pure: no clock, no I/O.

Five reusable bins (GRAI-96 RFID tags, encoded with epcpy; the same GRAI is printed on
each bin's GS1-128 label) travel hospital (generator, ``handed_over``) -> truck
(transporter, ``loaded``) -> treatment plant (facility, ``received``). Each station has a
badge reader, an RFID reader, a barcode scanner and a scale, and its own gateway. What
goes wrong, on purpose:

- bin 3 is loaded on the truck and never reaches the plant (missing-bin);
- bin 4 arrives 1.9 kg light (9.5 kg picked up: beyond max(200 g, 10 %) -> weight-loss);
- bin 5 arrives 400 g light, which is within 10 % (no alarm), bin 1 30-50 g (no alarm);
- the scales wobble (unstable readings) before they settle, tags are re-read while a bin
  sits on the scale, and the driver scans bin 1 a second time after loading the others.

Every line is the raw bytes a device sends (badge UID text, EPC hex, AIM-prefixed GS1
scan, MT-SICS or A&D scale line), with the adapter and port a gateway routes it by, so
tests run the real adapters (``observations``). ``operators_table``/``custody_table``
give the TOML-shaped configuration of the three gateways.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROUTE = "M2026-0042"
T0 = 1_772_438_400_000  # 2026-03-02T08:00:00Z
SEC, MIN = 1_000, 60_000
COMPANY_PREFIX, ASSET_TYPE = "4012345", "00042"  # GRAI-13 040123450004 2 + serial


@dataclass(frozen=True, slots=True)
class Person:
    badge: str  # as the card reader sends it (separators included: the adapter normalises)
    name: str
    org: str
    role: str

    @property
    def uid(self) -> str:
        return self.badge.replace(":", "").upper()


@dataclass(frozen=True, slots=True)
class Bin:
    serial: int
    category: str
    weights: Mapping[str, int | None]  # stage -> grams on that stage's scale; None: never arrives

    @property
    def epc(self) -> str:
        """GRAI-96 EPC-bank hex, filter 0, as the bin's RFID tag holds it."""
        from epcpy.epc_schemes.grai import GRAI, GRAIFilterValue

        g = GRAI(f"urn:epc:id:grai:{COMPANY_PREFIX}.{ASSET_TYPE}.{self.serial}")
        return str(g.hex(binary_coding_scheme=GRAI.BinaryCodingScheme.GRAI_96,
                         filter_value=GRAIFilterValue.ALL_OTHERS)).upper()

    @property
    def grai(self) -> str:
        """AI (8003) value: "0" + GRAI-13 (with check digit) + serial, as the label prints it."""
        digits = COMPANY_PREFIX + ASSET_TYPE
        total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
        return f"0{digits}{(10 - total % 10) % 10}{self.serial}"


@dataclass(frozen=True, slots=True)
class Line:
    t_ms: int
    adapter: str  # badge | epc | gs1 | mtsics | ad_scale
    port: str
    raw: bytes

    @property
    def sensor(self) -> str:
        return f"{self.adapter}:{self.port}"


@dataclass(frozen=True, slots=True)
class StationPlan:
    gateway: str
    station: str
    stage: str
    location: str
    operator: Person
    scale_adapter: str
    lines: tuple[Line, ...]

    def port(self, kind: str) -> str:
        return f"{self.station}-{kind}"

    @property
    def sensors(self) -> list[str]:
        return [f"badge:{self.port('badge')}", f"epc:{self.port('rfid')}", f"gs1:{self.port('scanner')}",
                f"{self.scale_adapter}:{self.port('scale')}"]

    def station_table(self) -> dict[str, Any]:
        """This station as one ``[[custody.stations]]`` table."""
        return {"id": self.station, "stage": self.stage, "location": self.location, "sensors": self.sensors}


@dataclass(frozen=True, slots=True)
class WasteRoute:
    route: str
    start_ms: int
    bins: tuple[Bin, ...]
    stations: tuple[StationPlan, ...]

    def station(self, stage: str) -> StationPlan:
        return next(s for s in self.stations if s.stage == stage)

    def operators_table(self) -> list[dict[str, Any]]:
        return [{"badge": s.operator.badge, "name": s.operator.name, "org": s.operator.org,
                 "role": s.operator.role} for s in self.stations]

    def custody_table(self, gateway: str | None = None) -> dict[str, Any]:
        """``[custody]`` for one gateway (or all stations, for a single-gateway test rig)."""
        return {"stations": [s.station_table() for s in self.stations if gateway in (None, s.gateway)]}


GENERATOR = Person("04:A2:3B:1C", "Ana Ruiz", "St. Mary Hospital", "generator")
TRANSPORTER = Person("04:B7:C2:D9:E1:F3:80", "Ben Okafor", "EcoMed Transport", "transporter")
FACILITY = Person("8F:3A:2B:1C", "Chen Li", "Clearwater Treatment", "facility")

BINS = (
    Bin(1001, "infectious", {"handed_over": 8200, "loaded": 8180, "received": 8150}),
    Bin(1002, "sharps", {"handed_over": 4300, "loaded": 4300, "received": 4290}),
    Bin(1003, "pathological", {"handed_over": 6100, "loaded": 6080, "received": None}),
    Bin(1004, "pharmaceutical", {"handed_over": 9500, "loaded": 9480, "received": 7600}),
    Bin(1005, "infectious", {"handed_over": 5400, "loaded": 5400, "received": 5000}),
)


def _scale(adapter: str, grams: int, stable: bool) -> bytes:
    kg = f"{grams // 1000}.{grams % 1000:03d}"
    if adapter == "mtsics":
        return f"S {'S' if stable else 'D'} {kg:>10} kg\r\n".encode()
    return f"{'ST' if stable else 'US'},+{kg:0>9}  kg\r\n".encode()


def _station(gateway: str, station: str, stage: str, location: str, op: Person, scale: str, start: int,
             bins: tuple[Bin, ...], *, label_scan: frozenset[int] = frozenset(),
             declare: bool = False, rescan: int | None = None) -> StationPlan:
    plan = StationPlan(gateway, station, stage, location, op, scale, ())
    port = plan.port
    lines: list[Line] = [Line(start, "badge", port("badge"), op.badge.encode()),
                         Line(start + 5 * SEC, "gs1", port("scanner"), f"]C191TS-ROUTE-{ROUTE}".encode())]
    t = start + 20 * SEC
    for b in bins:
        grams = b.weights[stage]
        if grams is None:
            continue
        if declare:
            lines.append(Line(t, "gs1", port("scanner"), f"]C191TS-CAT-{b.category.upper()}".encode()))
        if b.serial in label_scan:
            ident = Line(t + 3 * SEC, "gs1", port("scanner"), f"]C18003{b.grai}".encode())
        else:
            ident = Line(t + 3 * SEC, "epc", port("rfid"), b.epc.encode())
        lines += [
            ident,
            Line(t + 5 * SEC, scale, port("scale"), _scale(scale, grams + 640, False)),
            Line(t + 6 * SEC, scale, port("scale"), _scale(scale, grams - 30, False)),
            Line(t + 8 * SEC, scale, port("scale"), _scale(scale, grams, True)),
            Line(t + 9 * SEC, scale, port("scale"), _scale(scale, grams, True)),  # re-reported
            Line(t + 12 * SEC, "epc", port("rfid"), b.epc.encode()),  # tag still in the field
            Line(t + 30 * SEC, scale, port("scale"), _scale(scale, 0, True)),  # bin taken off
        ]
        t += MIN
    if rescan is not None:
        b = next(x for x in bins if x.serial == rescan)
        lines.append(Line(t, "epc", port("rfid"), b.epc.encode()))
        t += 20 * SEC
    lines.append(Line(t + 30 * SEC, "badge", port("badge"), op.badge.encode()))  # badge out
    return StationPlan(gateway, station, stage, location, op, scale, tuple(sorted(lines, key=lambda x: x.t_ms)))


def waste_route(start_ms: int = T0, bins: tuple[Bin, ...] = BINS) -> WasteRoute:
    """The route: hospital at ``start_ms``, truck 20 min later, plant 2 h later."""
    return WasteRoute(ROUTE, start_ms, bins, (
        _station("gw-hospital", "hospital-dock", "handed_over", "St. Mary Hospital, waste room B",
                 GENERATOR, "mtsics", start_ms, bins, declare=True),
        _station("gw-truck", "truck-7", "loaded", "EcoMed truck 7", TRANSPORTER, "ad_scale",
                 start_ms + 20 * MIN, bins, label_scan=frozenset({1002}), rescan=1001),
        _station("gw-plant", "plant-intake", "received", "Clearwater Treatment, intake dock", FACILITY,
                 "mtsics", start_ms + 120 * MIN, bins),
    ))


def observations(line: Line) -> list[Any]:
    """The line through the gateway's own adapter (``gateway.adapters.registry``)."""
    from gateway.adapters import registry

    return registry.get(line.adapter)(line.port, line.raw)


def station_observations(plan: StationPlan) -> list[tuple[int, Any]]:
    """The observation sequence of one station: (time_ms, Observation), in time order."""
    return [(ln.t_ms, o) for ln in plan.lines for o in observations(ln)]
