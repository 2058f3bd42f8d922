"""Configuration errors name the key; keys are 0600 or the gateway refuses to start."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import config as configmod
from gateway.cli import main
from gateway.core.errors import ConfigError
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
    ('[gateway]\nid = "g"\n[[sensors]]\nid = "p"\npublic_key = "' + "a" * 64
     + '"\n[[sensors]]\nid = "p"\npublic_key = "' + "b" * 64 + '"\n', "sensors[1].id", "duplicate sensor id 'p'"),
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


@contextlib.contextmanager
def _as_nobody() -> Iterator[str]:
    """Root reads and writes everything, so as root the test drops its effective ids to
    nobody's for the block (the kernel then refuses for real); otherwise it runs as is."""
    if os.geteuid() != 0:
        yield pwd.getpwuid(os.geteuid()).pw_name
        return
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield "nobody"
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder nobody can enter (pytest's tmp_path is inside a 0700 folder of root's)."""
    d = Path(tempfile.mkdtemp(prefix="ts-keys-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    d.chmod(0o755)
    shutil.rmtree(d)


def test_keygen_into_a_folder_it_cannot_write_is_a_clean_error(shared_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """README used to run keygen as the service user into root's /etc/traceseal: a traceback."""
    target = shared_dir / "etc"
    target.mkdir(mode=0o755)
    if os.geteuid() != 0:
        target.chmod(0o555)
    with _as_nobody() as me:
        rc = main(["keygen", str(target / "gateway.key")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"cannot write key file {target / 'gateway.key'}: folder {target}" in err
    assert f"not writable by {me}" in err and "Traceback" not in err
    assert not (target / "gateway.key").exists()


def test_a_key_the_service_user_cannot_read_is_a_clean_error(shared_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`rotate-key` or `keygen` run as root used to leave a root:root key; `run` then died
    with a PermissionError traceback and systemd restarted it in a loop."""
    import gateway.app.doctor as doctor
    import gateway.app.service  # noqa: F401 - imported before dropping privileges

    key = shared_dir / "gateway.key"
    write_private_key(key)
    if os.geteuid() != 0:
        key.chmod(0o000)
    owner = pwd.getpwuid(key.stat().st_uid).pw_name
    config = shared_dir / "traceseal.toml"
    config.write_text(f'[gateway]\nid = "g"\nkey_file = "{key}"\ndata_dir = "{shared_dir}"\n')
    config.chmod(0o644)
    with _as_nobody() as me:
        with pytest.raises(KeyFileError) as e:
            load_private_key(key)
        rc = main(["run", "-c", str(config)])
        checks = doctor.check_keys(configmod.load(config))
    assert str(e.value).startswith(f"cannot read key file {key} (owner {owner}, running as {me})")
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot read key file {key} (owner {owner}, running as {me})" in err
    assert "Traceback" not in err
    assert checks[0].status == "FAIL" and str(key) in checks[0].detail


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_rotate_key_as_root_keeps_the_key_files_owner(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.chain.rotation import install_key
    from ledger_client.keys import public_hex

    key = tmp_path / "gateway.key"
    write_private_key(key)
    nobody = pwd.getpwnam("nobody")
    os.chown(key, nobody.pw_uid, nobody.pw_gid)
    new = Ed25519PrivateKey.generate()
    install_key(key, new)
    st = key.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, nobody.pw_gid, 0o600)
    assert public_hex(load_private_key(key)) == public_hex(new)


def test_readme_configure_example_loads(tmp_path: Path) -> None:
    """A new user pastes README's Configure example: it must load as written (it once put
    `include` after [admission], which TOML reads as admission.include)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### Configure", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sensors.toml").write_text('[[sensors]]\nid = "probe-2"\npublic_key = "' + "cd" * 32 + '"\n')
    text = block.replace("<64 hex chars: the probe's Ed25519 public key>", "ab" * 32)
    cfg = configmod.load(write(tmp_path, text))
    assert cfg.gateway_id == "station-01" and set(cfg.sensors) == {"probe-1", "probe-2"}
