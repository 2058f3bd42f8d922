"""GS1 barcode and EPC/badge adapters against every sample in gs1_barcodes.json and epc_tags.json."""

from __future__ import annotations

from typing import Any

import pytest
from adapter_testkit import assert_observation_ok, samples

from gateway.adapters import epc, gs1
from gateway.core.errors import ParseError

GS1 = samples("gs1_barcodes.json")
EPC = samples("epc_tags.json")
NAMES = {"01": "gtin", "17": "expiry", "10": "lot", "21": "serial"}


@pytest.mark.parametrize("sample", GS1, ids=[s["id"] for s in GS1])
def test_every_gs1_sample(sample: dict[str, Any]) -> None:
    result = sample["biip_5_2_0_result"]
    if result.get("gs1_message") is None and "elements" not in result:
        with pytest.raises(ParseError) as info:
            gs1.parse("scanner", sample["input"].encode("ascii"))
        assert info.value.code == "not-gs1"
        assert sample["app_expected"] is None
        return
    (obs,) = gs1.parse("scanner", sample["input"].encode("ascii"))
    assert_observation_ok(obs)
    assert (obs.kind, obs.value, obs.unit) == ("scan", None, "")
    a = obs.attrs
    assert a["hri"] == result["hri"]
    for ai, element in result["elements"].items():
        assert a["ai"][ai] == element["value"]
        assert a[NAMES[ai]] == element.get("date", element["value"])  # dates as ISO YYYY-MM-DD
    if "symbology_identifier" in result:
        assert (a["symbology"], a["gs1_symbology"]) == (
            result["symbology_identifier"],
            result["gs1_symbology"],
        )
    if sample.get("app_expected"):  # what the vendor's own app extracts
        assert (a["lot"], a["expiry"]) == (
            sample["app_expected"]["lotNumber"],
            sample["app_expected"]["expirationDate"],
        )
    if sample["id"] == "negative_missing_gs":
        assert "17" not in a["ai"] and "warning" in a  # lot swallowed the expiry: flagged
    else:
        assert "warning" not in a
    if sample["id"] == "day_00_end_of_month":
        assert a["expiry"] == "2025-06-30"


@pytest.mark.parametrize("sample", EPC, ids=[s["id"] for s in EPC])
def test_every_epc_sample(sample: dict[str, Any]) -> None:
    (obs,) = epc.parse("reader-1", sample["hex"].encode())
    assert_observation_ok(obs)
    assert (obs.sensor, obs.kind, obs.value) == ("epc:reader-1", "rfid", None)
    a = obs.attrs
    for key, want in sample["expected"].items():  # filter/partition come from the bits
        assert a[key] == want, key
    assert a["epc"] == sample["hex"]


def test_pyepc_pitfall_filter_is_read_from_the_bits() -> None:
    """pyepc decodes the TDS worked example with filter 1; the bits say 3."""
    (obs,) = epc.parse("r", b"3074257BF7194E4000001A85")
    assert obs.attrs["filter"] == 3
    assert obs.attrs["tag_uri"] == "urn:epc:tag:sgtin-96:3.0614141.812345.6789"


def test_grai_tag_and_grai_label_name_the_same_bin() -> None:
    """A waste bin's GRAI-96 tag and its printed GS1 label must join on attrs['grai']."""
    (tag,) = epc.parse("r", b"33B4257BF40C0E4000000190")
    (label,) = gs1.parse("s", b"]Q38003" + tag.attrs["grai"].encode())
    assert tag.attrs["grai"] == label.attrs["grai"] == "00614141123452400"


def test_sgtin_tag_and_datamatrix_name_the_same_pack() -> None:
    (tag,) = epc.parse("r", b"3036142C8C008F8000053244")
    (label,) = gs1.parse(
        "s", b"]d201" + tag.attrs["gtin"].encode() + b"21" + tag.attrs["serial"].encode()
    )
    assert (tag.attrs["gtin"], tag.attrs["serial"]) == (label.attrs["gtin"], label.attrs["serial"])


def test_sscc_tag_and_label_agree() -> None:
    (tag,) = epc.parse("r", b"3114257BF4499602D2000000")
    (label,) = gs1.parse("s", b"]C100" + tag.attrs["sscc"].encode())
    assert tag.attrs["sscc"] == label.attrs["sscc"] == "106141412345678908"
