"""Configuration errors name the key; keys are 0600 or the gateway refuses to start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway import config as configmod
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.testing.station import make_station
from ledger_client.errors import KeyFileError
from ledger_client.keys import load_private_key, write_private_key


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, key, phrase", [
    ('[gateway]\n', "gateway.id", "is required"),
    ('[gateway]\nid = "a b"\n', "gateway.id", "letters, digits"),
    ('[gateway]\nid = "g"\n[mqtt]\nport = "1883"\n', "mqtt.port", "must be int, got str '1883'"),
    ('[gateway]\nid = "g"\n[mqtt]\nport = 70000\n', "mqtt.port", "must be in 1..65535"),
    ('[gateway]\nid = "g"\n[blocks]\nmax_recods = 5\n', "blocks.max_recods", "did you mean 'max_records'"),
    ('[gateway]\nid = "g"\n[journl]\n', "journl", "did you mean 'journal'"),
    ('[gateway]\nid = "g"\n[journal]\nsynchronous = "NORMAL"\n', "journal.synchronous", "can lose acknowledged"),
    ('[gateway]\nid = "g"\n[ledger]\nkind = "evm"\n', "ledger.evm.rpc_url", "is required"),
    ('[gateway]\nid = "g"\n[[sensors]]\nid = "p"\n', "sensors[0].public_key", "is required"),
    ('[gateway]\nid = "g"\n[[sensors]]\nid = "p"\npublic_key = "zz"\n', "sensors[0].public_key", "64 hex"),
    ('[gateway]\nid = "g"\n[[sensors]]\nid = "p"\npublic_key = "' + "a" * 64 + '"\n[[sensors]]\nid = "p"\npublic_key = "'
     + "b" * 64 + '"\n', "sensors[1].id", "duplicate sensor id 'p'"),
    ('gateway = [', "c.toml", "not valid TOML"),
    # README's old example: include written after [admission] keys lands inside [admission]
    ('[gateway]\nid = "g"\n[admission]\nmax_message_bytes = 100\ninclude = ["s.toml"]\n', "admission.include",
     "include is a top-level key: put it before the first [table]"),
])
def test_config_errors_name_key_and_problem(tmp_path: Path, text: str, key: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as ei:
        configmod.load(write(tmp_path, text))
    assert key in ei.value.key and phrase in str(ei.value)


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    cfg = configmod.load(write(tmp_path, '[gateway]\nid = "g"\ndata_dir = "d"\n'))
    assert cfg.journal.path == tmp_path / "d" / "journal.sqlite"
    assert cfg.key_file == tmp_path / "d" / "gateway.key"


def test_keygen_writes_0600_and_never_overwrites(tmp_path: Path) -> None:
    p = tmp_path / "k" / "gw.key"
    key = write_private_key(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in p.read_text()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_private_key(p)
    assert load_private_key(p).private_bytes_raw() == key.private_bytes_raw()


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "gw.key"
    write_private_key(p)
    os.chmod(p, 0o644)
    with pytest.raises(KeyFileError, match=r"mode 0644 lets group/others read the key; run: chmod 600"):
        load_private_key(p)


def test_gateway_refuses_to_start_with_open_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_station(tmp_path, 1883, sensors=1)
    os.chmod(st.root / "gateway.key", 0o640)
    assert main(["run", "-c", str(st.config_path)]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_cli_keygen_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, '[gateway]\nid = "g"\nkey_file = "keys/gw.key"\n[ledger]\nkey_file = "keys/ledger.key"\n')
    assert main(["keygen", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "keys/gw.key: new Ed25519 key, mode 0600" in out and "ledger.key: new" in out
    assert main(["keygen", "-c", str(cfg)]) == 0
    assert "exists, kept" in capsys.readouterr().out
