"""Issue 14, finding 6: files traceseal writes where other users may write too.

`traceseal export -o out.json` used to open the fixed name `out.json.partial`, following a
symlink planted there, and overwrote the link's target. Every writer now goes through
ledger_client.files.atomic_writer: a mkstemp file in the target folder, renamed over the
target (a symlink AT the target is replaced, never followed), and nothing at all on failure.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bench.faults.tamper import Fixture
from gateway import cli
from ledger_client.files import atomic_writer, write_atomic
from ledger_client.keys import load_private_key, public_hex, write_private_key

VICTIM = b"someone else's file\n"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    root = tmp_path_factory.mktemp("safe") / "st"
    fixture = Fixture(root, readings=24)
    fixture.config_path = root / "traceseal.toml"
    return fixture


def victim(tmp_path: Path) -> Path:
    v = tmp_path / "elsewhere" / "victim.txt"
    v.parent.mkdir(exist_ok=True)
    v.write_bytes(VICTIM)
    return v


def export(fx: Fixture, out: Path) -> int:
    return cli.main(["export", "-c", str(fx.config_path), "--sensor", "probe-1", "--from", str(fx.start_ms),
                     "--to", str(fx.start_ms + 10**9), "-o", str(out)])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_export_never_follows_a_link_planted_at_the_partial_name(fx: Fixture, tmp_path: Path) -> None:
    v = victim(tmp_path)
    outdir = tmp_path / "shared"
    outdir.mkdir()
    (outdir / "out.json.partial").symlink_to(v)
    (outdir / "other.json").write_bytes(b"keep me")
    assert export(fx, outdir / "out.json") == 0
    assert v.read_bytes() == VICTIM
    assert (outdir / "other.json").read_bytes() == b"keep me"
    assert (outdir / "out.json.partial").is_symlink()  # not ours: left alone
    assert json.loads((outdir / "out.json").read_bytes())["records"]
    assert leftovers(outdir) == []


def test_export_replaces_a_link_at_the_target_instead_of_writing_through_it(fx: Fixture, tmp_path: Path) -> None:
    v = victim(tmp_path)
    out = tmp_path / "out.json"
    out.symlink_to(v)
    assert export(fx, out) == 0
    assert v.read_bytes() == VICTIM
    assert not out.is_symlink() and json.loads(out.read_bytes())["records"]


def test_export_failing_midway_leaves_the_old_file_and_no_temporary(fx: Fixture, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.chain import export as exportmod

    out = tmp_path / "out.json"
    out.write_bytes(b"the previous export")
    real = exportmod.export_range

    def dies_halfway(*args: object, out: object, **kw: object) -> object:
        out.write(b'{"half":')  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exportmod, "export_range", dies_halfway)
    with pytest.raises(OSError):
        export(fx, out)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    monkeypatch.setattr(exportmod, "export_range", real)
    assert export(fx, out) == 0 and json.loads(out.read_bytes())["records"]


def test_atomic_writer_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as f:
        f.write(b"new but ")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["report.json"]
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["report.json"]
    write_atomic(tmp_path / "secret", b"x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_atomic(target, b"again", overwrite=False)
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["report.json", "secret"]


def test_keygen_never_writes_through_planted_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = victim(tmp_path)
    key = tmp_path / "gateway.key"
    (tmp_path / "gateway.key.tmp").symlink_to(v)  # the fixed temporary name keygen used to open
    assert cli.main(["keygen", str(key)]) == 0
    assert v.read_bytes() == VICTIM
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = public_hex(load_private_key(key))
    # an existing key is kept without --force
    assert cli.main(["keygen", str(key)]) == 0
    assert public_hex(load_private_key(key)) == first
    # a (dangling) link at the key's own name is an existing name: refused, never followed
    dangling = tmp_path / "other.key"
    dangling.symlink_to(tmp_path / "elsewhere" / "created-by-link.key")
    capsys.readouterr()
    assert cli.main(["keygen", str(dangling)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere" / "created-by-link.key").exists()
    # --force replaces a link at the key's name with a new file; the link's target is untouched
    linked = tmp_path / "linked.key"
    linked.symlink_to(v)
    assert cli.main(["keygen", str(linked), "--force"]) == 0
    assert v.read_bytes() == VICTIM and not linked.is_symlink()
    assert stat.S_IMODE(linked.stat().st_mode) == 0o600


def test_write_private_key_refuses_to_replace_an_existing_key(tmp_path: Path) -> None:
    from ledger_client.errors import KeyFileError

    key = tmp_path / "k.key"
    first = public_hex(write_private_key(key))
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(key)
    assert public_hex(load_private_key(key)) == first
    assert sorted(os.listdir(tmp_path)) == ["k.key"]


def test_rotate_key_install_replaces_a_link_not_its_target(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.chain.rotation import install_key

    v = victim(tmp_path)
    key = tmp_path / "gateway.key"
    (tmp_path / "gateway.key.tmp").symlink_to(v)
    write_private_key(key)
    new = Ed25519PrivateKey.generate()
    install_key(key, new)
    assert v.read_bytes() == VICTIM
    assert public_hex(load_private_key(key)) == public_hex(new)


def test_simulator_outputs_never_follow_planted_links(tmp_path: Path) -> None:
    from firmware_sim.cli import main as sim_main
    from firmware_sim.counter import CounterStore

    v = victim(tmp_path)
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "sensors.toml.tmp").symlink_to(v)
    (keys / "probe-1.ctr.tmp").symlink_to(v)
    (keys / "firmware_sim.lock").symlink_to(tmp_path / "elsewhere" / "lock-made-by-link")
    assert sim_main(["enroll", "--sensors", "1", "--key-dir", str(keys), "--out", str(tmp_path / "sensors.toml")]) == 0
    assert "[[sensors]]" in (tmp_path / "sensors.toml").read_text()
    store = CounterStore(keys / "probe-1.ctr")
    assert store.take() == 1
    assert (keys / "probe-1.ctr").read_text().strip() == "65"
    assert v.read_bytes() == VICTIM
    from firmware_sim.counter import DirLock
    from firmware_sim.errors import SimConfigError

    with pytest.raises(SimConfigError, match="cannot open the lock file"), DirLock(keys):
        pass
    assert not (tmp_path / "elsewhere" / "lock-made-by-link").exists()


def test_simulator_hmac_enroll_is_atomic_and_private(tmp_path: Path) -> None:
    from firmware_sim.cli import main as sim_main

    keys = tmp_path / "keys"
    keys.mkdir()
    assert sim_main(["enroll", "--sensors", "2", "--hmac", "--key-dir", str(keys),
                     "--out", str(tmp_path / "sensors.toml")]) == 0
    macs = sorted(keys.glob("*.hmac*"))
    assert macs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in macs)
    assert all(len(p.read_text().strip()) == 64 for p in macs)
    assert leftovers(keys) == []
