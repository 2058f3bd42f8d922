"""archive.toml errors name the key; the CLI refuses bad enrolments with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.archive import config as archive_config
from gateway.cli import main
from gateway.core.errors import ConfigError

KEY = "ab" * 32


@pytest.mark.parametrize("text, key, phrase", [
    ('[broker]\nport = 0\n', "broker.port", "1..65535"),
    ('[broker]\nhots = "x"\n', "broker.hots", "did you mean 'host'"),
    ('[store]\nsqlite = "a.sqlite"\npostgres = "postgresql://x/y"\n', "store", "not both"),
    ('[stor]\n', "stor", "did you mean 'store'"),
    ('prefix = "a/+/b"\n', "prefix", "without '+'"),
    ('[[gateways]]\nid = "g 1"\npublic_key = "' + KEY + '"\n', "gateways[0].id", "letters, digits"),
    ('[[gateways]]\nid = "g1"\npublic_key = "' + KEY.upper() + '"\n', "gateways[0].public_key", "lowercase hex"),
    ('[[gateways]]\nid = "g1"\n', "gateways[0].public_key", "is required"),
    ('[[gateways]]\nid = "g1"\npublic_key = "' + KEY + '"\n[[gateways]]\nid = "g1"\npublic_key = "' + KEY + '"\n',
     "gateways[1].id", "enrolled twice"),
    ('[limits]\nmax_payload = 10\n', "limits.max_payload", "1024"),
])
def test_config_errors_name_the_key(tmp_path: Path, text: str, key: str, phrase: str) -> None:
    p = tmp_path / "archive.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        archive_config.load(p)
    assert e.value.key == key and phrase in e.value.problem


def test_defaults_and_enroll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "archive.toml"
    p.write_text("")
    cfg = archive_config.load(p)
    assert cfg.store.sqlite == tmp_path / "archive.sqlite" and cfg.prefix == "traceseal/up"
    assert cfg.broker.topics == tuple(f"traceseal/up/+/{s}"
                                      for s in ("hello", "records", "alarms", "blocks", "anchors"))
    assert main(["archive", "enroll", "-c", str(p), "--id", "g1", "--public-key", KEY]) == 0
    assert main(["archive", "enroll", "-c", str(p), "--id", "g1", "--public-key", KEY]) == 0
    assert "already enrolled" in capsys.readouterr().out
    assert main(["archive", "enroll", "-c", str(p), "--id", "g1", "--public-key", "cd" * 32]) == 3  # no silent rotation
    assert "enrolled with key abababab" in capsys.readouterr().err
    assert main(["archive", "enroll", "-c", str(p), "--id", "g/1", "--public-key", KEY]) == 2
    assert main(["archive", "enroll", "-c", str(p), "--id", "g3", "--public-key", KEY]) == 2  # g1's key
    assert "already enrolled for gateway 'g1'" in capsys.readouterr().err
    assert main(["archive", "enroll", "-c", str(p), "--id", "g2", "--public-key", "xyz"]) == 2
    assert main(["archive", "status", "-c", str(p)]) == 0
    out = capsys.readouterr().out
    assert "gateway g1" in out and "records      0" in out


def test_a_closed_pipe_ends_a_command_quietly(tmp_path: Path) -> None:
    """`traceseal archive status | head` printed a BrokenPipeError traceback."""
    import subprocess
    import sys

    from gateway.archive.store import open_store

    p = tmp_path / "archive.toml"
    p.write_text("")
    store = open_store(archive_config.load(p).store)
    for i in range(1000):  # far more than a pipe's 64 KiB buffer, so the writer meets the closed end
        store.enroll(f"station-{i:04d}", f"{i:064x}", 0)
    store.close()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "archive", "status", "-c", str(p)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"archive ")
    proc.stdout.close()  # what `head -1` does
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
