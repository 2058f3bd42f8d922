"""CustodyStation and sessions: refusals, notices, duplicates, timing, one record per bin."""

from __future__ import annotations

from typing import Any

import pytest
from custody_kit import SEC, Rig, strip

from firmware_sim.waste_route import GENERATOR, TRANSPORTER, Bin
from gateway.core.observation import Observation
from gateway.rules.custody.events import CustodyStation
from gateway.rules.custody.operators import parse_operators
from gateway.rules.custody.settings import CustodyConfig, station

T = 1_772_438_400_000
OPS = parse_operators([
    {"badge": "04:A2:3B:1C", "name": "Ana Ruiz", "org": "St. Mary", "role": "generator"},
    {"badge": "04B7C2D9E1F380", "name": "Ben Okafor", "org": "EcoMed", "role": "transporter"},
    {"badge": "8F3A2B1C", "name": "Chen Li", "org": "Clearwater", "role": "facility"},
])
ANA, BEN, CHEN = "04A23B1C", "04B7C2D9E1F380", "8F3A2B1C"
GRAI = [Bin(n, "infectious", {}).grai for n in (1001, 1002, 1003)]
ROUTE = "R1"


def badge(uid: str) -> Observation:
    return Observation("badge:r", "badge", None, "", "badge", attrs={"uid": uid})


def tag(grai: str) -> Observation:
    return Observation("epc:r", "rfid", None, "", "epc", attrs={"grai": grai, "scheme": "grai-96"})


def sscc(code: str) -> Observation:
    return Observation("gs1:s", "scan", None, "", "gs1", attrs={"sscc": code, "ai": {"00": code}})


def code(text: str) -> Observation:
    return Observation("gs1:s", "scan", None, "", "gs1", attrs={"ai": {"91": text}})


def weight(g: int, stable: bool = True) -> Observation:
    return Observation("mtsics:w", "weight", g, "g", "mtsics", attrs={"stable": stable})


def rig(stage: str = "handed_over", filtered: bool = True, **kw: Any) -> tuple[Rig, CustodyStation]:
    """A gateway with one station; ``filtered``: the real ChangeFilter before sealing, as in
    the pipeline (otherwise every observation becomes a record)."""
    kw.setdefault("require_category", False)
    cfg = CustodyConfig(repeat_weights_recorded=not filtered)
    st = CustodyStation(station("dock", stage, "Dock B", ["badge:r", "epc:r", "gs1:s", "mtsics:w"], **kw), OPS, cfg)
    r = Rig("gw", [st])
    if not filtered:
        r.filter = None
    return r, st


def play(r: Rig, steps: list[tuple[int, Observation | None]]) -> None:
    """(seconds after T, observation) pairs; None ticks."""
    for s, obs in steps:
        if obs is None:
            r.tick(T + s * SEC)
        else:
            r.observe(obs, T + s * SEC)


def signed_in(uid: str = ANA) -> list[tuple[int, Observation | None]]:
    return [(0, badge(uid)), (1, code(f"TS-ROUTE-{ROUTE}"))]


def test_one_bin_one_record() -> None:
    r, st = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0])), (4, weight(7000, False)), (5, weight(7010))])
    rec, = r.of("custody")
    assert (rec["weight_g"], rec["stage"], rec["route"], rec["bin"]) == (7010, "handed_over", ROUTE, {"grai": GRAI[0]})
    assert rec["operator"] == {"badge": ANA, "name": "Ana Ruiz", "org": "St. Mary", "role": "generator"}
    assert (rec["at_ms"], rec["scan_ms"], rec["weight_ms"]) == (T + 5 * SEC, T + 2 * SEC, T + 5 * SEC)
    assert "category" not in rec and st.counts["custody.recorded"] == 1


def test_scan_without_session_is_refused_with_a_clear_message() -> None:
    r, st = rig()
    play(r, [(0, tag(GRAI[0])), (1, weight(5000))])
    ref, = r.of("custody_refusal")
    assert ref["reason"] == "no-session" and ref["bin"] == {"grai": GRAI[0]}
    assert "nobody is signed in; badge in first" in ref["message"] and GRAI[0] in ref["message"]
    assert r.of("custody") == [] and st.counts["custody.refused.no-session"] == 1


def test_unknown_badge_is_refused() -> None:
    r, _ = rig()
    play(r, [(0, badge("DEADBEEF")), (2, tag(GRAI[0]))])
    reasons = [x["reason"] for x in r.of("custody_refusal")]
    assert reasons == ["unknown-badge", "no-session"]
    assert "not on the operator allow-list" in r.of("custody_refusal")[0]["message"]


def test_wrong_role_may_not_record_the_stage() -> None:
    r, _ = rig("received")
    play(r, [*signed_in(BEN), (2, tag(GRAI[0])), (3, weight(5000))])
    ref = r.of("custody_refusal")
    assert [x["reason"] for x in ref] == ["stage-not-permitted", "no-session", "no-session"]
    assert ref[0]["operator"]["role"] == "transporter"
    assert "Ben Okafor (transporter, EcoMed) may not record stage 'received'" in ref[0]["message"]
    assert r.of("custody") == [] and r.of("custody_session") == []


def test_facility_may_record_received() -> None:
    r, _ = rig("received")
    play(r, [*signed_in(CHEN), (2, tag(GRAI[0])), (3, weight(5000))])
    assert [x["stage"] for x in r.of("custody")] == ["received"]


def test_expired_session_is_refused() -> None:
    r, st = rig(session_idle_s=300)
    play(r, [*signed_in(), (2, tag(GRAI[0])), (3, weight(5000)), (200, None), (302, None), (304, None),
             (400, tag(GRAI[1]))])
    end = r.of("custody_session")[-1]
    assert (end["event"], end["reason"], end["at_ms"]) == ("end", "idle-timeout", T + 303 * SEC)
    ref, = r.of("custody_refusal")
    assert ref["reason"] == "session-expired"
    assert ("the session of Ana Ruiz (generator, St. Mary) expired at 2026-03-02 08:05:03Z after 5 min idle"
            in ref["message"])
    assert "badge in again" in ref["message"]
    assert len(r.of("custody")) == 1 and st.desk.session is None


def test_badge_out_sign_out_and_a_held_card() -> None:
    r, st = rig(filtered=False)
    play(r, [(0, badge(ANA)), (2, badge(ANA))])  # the card held on the reader: one read
    assert st.desk.session is not None and st.counts["custody.badge-repeat"] == 1
    play(r, [(10, badge(ANA))])
    assert st.desk.session is None and r.of("custody_session")[-1]["reason"] == "badge-out"
    play(r, [(20, badge(ANA)), (25, code("TS-SIGN-OUT"))])
    assert st.desk.session is None and r.of("custody_session")[-1]["reason"] == "sign-out"
    play(r, [(30, badge(ANA))])
    r._run([r.seal(b, T + 40 * SEC) for b in st.sign_out(T + 40 * SEC)], T + 40 * SEC)
    assert st.desk.session is None and r.of("custody_session")[-1]["reason"] == "sign-out"


def test_another_badge_replaces_the_session() -> None:
    r, st = rig("received")
    play(r, [(0, badge(CHEN)), (10, badge(ANA))])  # Ana is refused: Chen stays signed in
    assert st.desk.session is not None and st.desk.session.operator.name == "Chen Li"
    ops = dict(OPS)
    ops["11223344"] = OPS[CHEN].__class__("11223344", "Dee", "Clearwater", "facility", ("received",))
    st.desk.operators = ops
    play(r, [(20, badge("11223344"))])
    assert [s.get("reason") for s in r.of("custody_session")] == [None, "replaced", None]
    assert st.desk.session is not None and st.desk.session.operator.name == "Dee"


def test_duplicate_bin_scans_are_not_double_counted() -> None:
    r, st = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0])), (4, weight(5000)), (5, tag(GRAI[0])), (6, weight(5000)),
             (8, weight(0)), (10, tag(GRAI[1])), (12, weight(3000)), (14, weight(0)),
             (20, tag(GRAI[0])), (22, weight(5000)), (30, tag(GRAI[0])), (31, weight(0)), (32, weight(5000))])
    assert [x["bin"]["grai"] for x in r.of("custody")] == [GRAI[0], GRAI[1]]
    notes = r.of("custody_notice")
    assert [(n["notice"], n["bin"]["grai"]) for n in notes] == [("already-recorded", GRAI[0])]  # once per session
    assert st.counts["custody.duplicate-bin"] == 3


def test_duplicate_across_sessions_and_stations_of_one_gateway() -> None:
    r, _ = rig()
    other = CustodyStation(station("dock2", "handed_over", "Dock C", ["epc:r2", "badge:r2", "mtsics:w2"],
                                   require_category=False), OPS)
    r.consumers.append(other)
    play(r, [*signed_in(), (2, tag(GRAI[0])), (4, weight(5000)), (6, badge(ANA))])
    r.observe(Observation("badge:r2", "badge", None, "", "badge", attrs={"uid": ANA}), T + 10 * SEC)
    r.observe(Observation("gs1:s", "scan", None, "", "gs1", attrs={"ai": {"91": "TS-ROUTE-R1"}}), T + 11 * SEC)
    other.desk.session.route = ROUTE  # type: ignore[union-attr]  # dock2 has no scanner
    r.observe(Observation("epc:r2", "rfid", None, "", "epc", attrs={"grai": GRAI[0]}), T + 12 * SEC)
    r.observe(Observation("mtsics:w2", "weight", 5100, "g", "mtsics", attrs={"stable": True}), T + 13 * SEC)
    assert len(r.of("custody")) == 1
    assert [n["station"] for n in r.of("custody_notice")] == ["dock2"]


def test_unstable_weight_gives_a_notice_and_no_record() -> None:
    wobble = [(3 + i, weight(5000 + 37 * i, False)) for i in range(40)]
    r, _ = rig(weight_timeout_s=30)  # records: the filter drops unstable weights
    play(r, [*signed_in(), (2, tag(GRAI[0])), *wobble, (45, None)])
    assert r.of("custody") == []
    n, = r.of("custody_notice")
    assert (n["notice"], n["why"], n["at_ms"], n["since_ms"]) == ("no-weight", "timeout", T + 32 * SEC, T + 2 * SEC)
    assert "no stable weight within 30 s of the scan" in n["message"]
    # fed observations directly, the station sees the wobble and says so
    st = CustodyStation(station("dock", "handed_over", "Dock B", ["badge:r", "epc:r", "gs1:s", "mtsics:w"],
                                require_category=False, weight_timeout_s=30), OPS)
    out = []
    for s_, o in [*signed_in(), (2, tag(GRAI[0])), *wobble]:
        out += st.feed(o, T + s_ * SEC)
    out += st.tick(T + 45 * SEC)
    n2, = [b for b in out if b["type"] == "custody_notice"]
    assert "the scale did not settle within 30 s of the scan" in n2["message"]
    assert [b for b in out if b["type"] == "custody"] == []


def test_two_bins_of_identical_weight_both_count() -> None:
    r, _ = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0])), (4, weight(5000)), (6, weight(5000)), (8, weight(0)),
             (10, tag(GRAI[1])), (12, weight(5000, False)), (13, weight(5000))])
    assert [(x["bin"]["grai"], x["weight_g"]) for x in r.of("custody")] == [(GRAI[0], 5000), (GRAI[1], 5000)]


def test_bin_with_no_weight_gives_a_notice() -> None:
    r, _ = rig(weight_timeout_s=30)
    play(r, [*signed_in(), (2, tag(GRAI[0])), (40, None)])
    n, = r.of("custody_notice")
    assert n["notice"] == "no-weight" and "no stable weight within 30 s" in n["message"]
    assert n["operator"]["name"] == "Ana Ruiz" and n["route"] == ROUTE


def test_next_bin_closes_the_pending_one() -> None:
    r, _ = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0])), (5, tag(GRAI[1])), (7, weight(4000))])
    n, = r.of("custody_notice")
    assert n["why"] == "next-bin" and f"before bin grai:{GRAI[1]} was scanned" in n["message"]
    assert [x["bin"]["grai"] for x in r.of("custody")] == [GRAI[1]]


def test_session_end_closes_the_pending_bin() -> None:
    r, _ = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0])), (10, badge(ANA))])
    n, = r.of("custody_notice")
    assert n["why"] == "session-ended"


@pytest.mark.parametrize("filtered", [True, False])
def test_weight_shortly_before_the_bin_read_counts_once(filtered: bool) -> None:
    r, _ = rig(filtered=filtered, weight_lookback_s=10)
    play(r, [*signed_in(), (2, weight(6000)), (4, tag(GRAI[0])),  # tag read after the scale settled
             (6, tag(GRAI[1])), (7, weight(6000)),  # bin 0 still on the scale: its weight is not bin 1's
             (9, weight(0)), (11, weight(2500))])
    assert [(x["bin"]["grai"], x["weight_g"]) for x in r.of("custody")] == [(GRAI[0], 6000), (GRAI[1], 2500)]


def test_stale_weight_is_not_used() -> None:
    r, _ = rig(weight_lookback_s=10, weight_timeout_s=30)
    play(r, [*signed_in(), (2, weight(6000)), (20, tag(GRAI[0])), (60, None)])
    assert r.of("custody") == [] and r.of("custody_notice")[0]["notice"] == "no-weight"


def test_required_category_is_one_shot() -> None:
    r, _ = rig(require_category=True, weight_timeout_s=30)
    play(r, [*signed_in(), (2, code("TS-CAT-SHARPS")), (3, tag(GRAI[0])), (5, weight(3000)), (7, weight(0)),
             (10, tag(GRAI[1])), (12, weight(4000)), (20, code("TS-CAT-INFECTIOUS")),
             (25, weight(0)), (30, tag(GRAI[2])), (32, weight(1000)), (70, None)])
    assert [(x["bin"]["grai"], x["category"]) for x in r.of("custody")] == [(GRAI[0], "sharps"),
                                                                            (GRAI[1], "infectious")]
    n, = r.of("custody_notice")
    assert n["notice"] == "no-category" and n["bin"]["grai"] == GRAI[2]
    assert "no waste category was scanned" in n["message"]


def test_no_route_gives_a_notice_and_a_station_default_route_works() -> None:
    r, _ = rig(weight_timeout_s=30)
    play(r, [(0, badge(ANA)), (2, tag(GRAI[0])), (3, weight(3000)), (40, None)])
    n, = r.of("custody_notice")
    assert n["notice"] == "no-route" and "no route (manifest) barcode" in n["message"]
    r2, _ = rig(route="FIXED-1")
    play(r2, [(0, badge(ANA)), (2, tag(GRAI[0])), (3, weight(3000))])
    assert [x["route"] for x in r2.of("custody")] == ["FIXED-1"]


def test_sscc_labels_and_unknown_codes() -> None:
    r, st = rig()
    play(r, [*signed_in(), (2, code("HELLO")), (3, sscc("106141412345678908")), (4, weight(900))])
    assert [x["bin"] for x in r.of("custody")] == [{"sscc": "106141412345678908"}]
    assert st.counts["custody.unknown-code"] == 1


def test_treated_records_carry_the_treatment_method() -> None:
    r, _ = rig("treated", treatment="autoclave")
    play(r, [*signed_in(CHEN), (2, tag(GRAI[0])), (3, weight(4000))])
    assert r.of("custody")[0]["treatment"] == "autoclave"


def test_repeated_refusals_are_throttled_but_counted() -> None:
    r, st = rig()
    play(r, [(i * 3, tag(GRAI[0])) for i in range(10)] + [(100, tag(GRAI[0]))])
    assert len(r.of("custody_refusal")) == 2  # at 0 s and again after refusal_repeat_s (60 s)
    assert st.counts["custody.refused.no-session"] == 11


def test_bodies_never_leak_into_other_stations_sensors() -> None:
    r, _ = rig()
    r.observe(Observation("epc:elsewhere", "rfid", None, "", "epc", attrs={"grai": GRAI[0]}), T)
    assert [x["type"] for x in r.records] == ["reading"]


def test_status_for_a_display() -> None:
    r, st = rig()
    play(r, [*signed_in(), (2, tag(GRAI[0]))])
    s = st.status()
    assert s["operator"]["name"] == "Ana Ruiz" and s["pending_bin"] == {"grai": GRAI[0]} and s["route"] == ROUTE
    assert strip(r.of("custody_session")[0])["badge_seq"] == 0
    assert GENERATOR.uid == ANA and TRANSPORTER.uid == BEN
