"""Issue 14, finding 8: a file a config names (password, key, certificate) that is missing,
unreadable or, for a secret, readable by others is one line naming the config key and the
path, exit 2, at start (`traceseal run`) and in `traceseal doctor`: never a traceback.

It used to be a `FileNotFoundError` traceback for the README's own `mqtt.password_file`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import cli
from gateway.testing.mosquitto import free_port
from gateway.testing.station import StationDir, make_station

REPO = Path(__file__).resolve().parents[1]


def secret(path: Path, text: str = "s3cret\n", mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def in_mqtt(st: StationDir, lines: str) -> None:
    text = st.config_path.read_text()
    st.config_path.write_text(text.replace("[mqtt]\n", "[mqtt]\n" + lines, 1))


def append(st: StationDir, toml: str) -> None:
    st.config_path.write_text(st.config_path.read_text().replace("[[sensors]]", toml + "\n[[sensors]]", 1))


def upstream(st: StationDir, tls: str = "", creds: str = "") -> None:
    append(st, f'[upstream]\nenabled = true\nhost = "127.0.0.1"\nport = {free_port()}\n{creds}'
               + (f"[upstream.tls]\n{tls}" if tls else ""))


# each case: (config key, what to do to a fresh station, the path that is missing/bad)
CASES: dict[str, Callable[[StationDir], Path]] = {}


def case(key: str) -> Callable[[Callable[[StationDir], Path]], Callable[[StationDir], Path]]:
    def register(fn: Callable[[StationDir], Path]) -> Callable[[StationDir], Path]:
        CASES[key] = fn
        return fn
    return register


@case("gateway.key_file")
def _gateway_key(st: StationDir) -> Path:
    (st.root / "gateway.key").unlink()
    return st.root / "gateway.key"


@case("ledger.key_file")
def _ledger_key(st: StationDir) -> Path:
    (st.root / "ledger.key").unlink()
    return st.root / "ledger.key"


@case("mqtt.password_file")
def _mqtt_password(st: StationDir) -> Path:
    in_mqtt(st, 'username = "traceseal-gateway"\npassword_file = "/etc/traceseal/mqtt.password.missing"\n')
    return Path("/etc/traceseal/mqtt.password.missing")


@case("mqtt.tls_ca")
def _mqtt_ca(st: StationDir) -> Path:
    in_mqtt(st, 'tls_ca = "ca.pem"\n')
    return st.root / "ca.pem"


@case("mqtt.tls_cert")
def _mqtt_cert(st: StationDir) -> Path:
    secret(st.root / "ca.pem", "ca", 0o644)
    secret(st.root / "client.key")
    in_mqtt(st, 'tls_ca = "ca.pem"\ntls_cert = "client.pem"\ntls_key = "client.key"\n')
    return st.root / "client.pem"


@case("mqtt.tls_key")
def _mqtt_key(st: StationDir) -> Path:
    secret(st.root / "ca.pem", "ca", 0o644)
    secret(st.root / "client.pem", "cert", 0o644)
    in_mqtt(st, 'tls_ca = "ca.pem"\ntls_cert = "client.pem"\ntls_key = "client.key"\n')
    return st.root / "client.key"


@case("upstream.password_file")
def _up_password(st: StationDir) -> Path:
    upstream(st, creds='username = "station-01"\npassword_file = "up.password"\n')
    return st.root / "up.password"


@case("upstream.tls.ca_file")
def _up_ca(st: StationDir) -> Path:
    upstream(st, tls='ca_file = "up-ca.pem"\n')
    return st.root / "up-ca.pem"


@case("upstream.tls.cert_file")
def _up_cert(st: StationDir) -> Path:
    secret(st.root / "up-ca.pem", "ca", 0o644)
    secret(st.root / "up.key")
    upstream(st, tls='ca_file = "up-ca.pem"\ncert_file = "up.pem"\nkey_file = "up.key"\n')
    return st.root / "up.pem"


@case("upstream.tls.key_file")
def _up_key(st: StationDir) -> Path:
    secret(st.root / "up-ca.pem", "ca", 0o644)
    secret(st.root / "up.pem", "cert", 0o644)
    upstream(st, tls='ca_file = "up-ca.pem"\ncert_file = "up.pem"\nkey_file = "up.key"\n')
    return st.root / "up.key"


@case("web.token_file")
def _web_token(st: StationDir) -> Path:
    append(st, '[web]\ntoken_file = "web.token"\n')
    return st.root / "web.token"


@case("ledger.evm.key_file")
def _evm_key(st: StationDir) -> Path:
    text = st.config_path.read_text()
    local = text[text.index("[ledger]"):text.index("poll_s = 0.2\n") + len("poll_s = 0.2\n")]
    st.config_path.write_text(text.replace(local, textwrap.dedent("""\
        [ledger]
        kind = "evm"
        [ledger.evm]
        rpc_url = "http://127.0.0.1:9"
        chain_id = 31337
        key_file = "eth.key"
        """)))
    return st.root / "eth.key"


@case("include")
def _include(st: StationDir) -> Path:
    st.config_path.write_text('include = ["more-sensors.toml"]\n' + st.config_path.read_text())
    return st.root / "more-sensors.toml"


@case("sensors[0].hmac_key_file")
def _hmac_key(st: StationDir) -> Path:
    text = st.config_path.read_text()
    pk = text.split('public_key = "')[1].split('"')[0]
    st.config_path.write_text(text.replace(f'public_key = "{pk}"', 'hmac_key_file = "probe-1.hmac"', 1))
    return st.root / "probe-1.hmac"


LOADED_WITH_THE_CONFIG = {"include", "sensors[0].hmac_key_file"}  # read while parsing: doctor cannot start


@pytest.fixture
def no_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` builds the gateway for real but must not serve: a config that passes is a failed test."""
    from gateway.app.service import Gateway

    def started(self: Gateway) -> None:
        raise AssertionError("the gateway started with this config")

    monkeypatch.setattr(Gateway, "run_forever", started)


def station(tmp_path: Path, key: str) -> tuple[StationDir, Path]:
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    return st, CASES[key](st)


@pytest.mark.parametrize("key", sorted(CASES))
def test_run_names_the_key_and_the_missing_file(key: str, tmp_path: Path, no_start: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    st, path = station(tmp_path, key)
    rc = cli.main(["run", "-c", str(st.config_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and "\n" not in err, err
    assert f"config {key}:" in err and str(path) in err, err


@pytest.mark.parametrize("key", sorted(CASES))
def test_doctor_names_the_key_and_the_missing_file(key: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    st, path = station(tmp_path, key)
    rc = cli.main(["doctor", "-c", str(st.config_path), "--no-queue-probe"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    if key in LOADED_WITH_THE_CONFIG:  # the config itself cannot be read: no checks, one line, exit 2
        assert rc == 2 and f"config {key}:" in err and str(path) in err and "\n" not in err.strip(), err
        return
    assert rc == 2, out + err
    fails = [line for line in out.splitlines() if line.startswith("FAIL") and f"config {key}:" in line]
    assert len(fails) == 1 and str(path) in fails[0], out


@pytest.mark.parametrize("key,make", [
    ("mqtt.password_file", lambda st: secret(st.root / "mqtt.password", mode=0o644)),
    ("upstream.password_file", lambda st: secret(st.root / "up.password", mode=0o640)),
])
def test_a_secret_readable_by_others_is_refused_by_key(key: str, make: Callable[[StationDir], Path], tmp_path: Path,
                                                       no_start: None, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    path = make(st)
    if key.startswith("mqtt"):
        in_mqtt(st, 'username = "traceseal-gateway"\npassword_file = "mqtt.password"\n')
    else:
        upstream(st, creds='username = "station-01"\npassword_file = "up.password"\n')
    assert cli.main(["run", "-c", str(st.config_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"config {key}: {path}: mode 0" in err and f"chmod 600 {path}" in err and "\n" not in err
    assert cli.main(["doctor", "-c", str(st.config_path), "--no-queue-probe"]) == 2
    assert f"config {key}: {path}: mode 0" in capsys.readouterr().out


def test_keygen_and_web_token_still_create_what_the_config_names(tmp_path: Path) -> None:
    """The file checks belong to `run` and `doctor`, not to loading: `keygen -c` and
    `web-token` exist to create the very files they would refuse."""
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    (st.root / "gateway.key").unlink()
    append(st, '[web]\ntoken_file = "web.token"\n')
    assert cli.main(["keygen", "-c", str(st.config_path)]) == 0
    assert cli.main(["web-token", "-c", str(st.config_path)]) == 0
    assert (st.root / "gateway.key").exists() and (st.root / "web.token").exists()


@pytest.mark.parametrize("command", ["run", "doctor"])
def test_readme_password_file_example_missing_is_one_line_not_a_traceback(command: str, tmp_path: Path) -> None:
    """The finding as reported: the README's `password_file = "/etc/traceseal/mqtt.password"`
    not created yet, the real CLI in a subprocess."""
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    missing = tmp_path / "etc" / "mqtt.password"
    in_mqtt(st, f'username = "traceseal-gateway"\npassword_file = "{missing}"\n')
    args = [sys.executable, "-m", "gateway.cli", command, "-c", str(st.config_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run(args + (["--no-queue-probe"] if command == "doctor" else []), capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    shown = p.stderr if command == "run" else p.stdout
    assert f"config mqtt.password_file: {missing}: no such" in shown, shown
    if command == "run":
        assert p.stderr.strip().count("\n") == 0, p.stderr


@pytest.mark.parametrize("key,text", [
    ("broker.password_file", '[broker]\nport = {port}\nusername = "archive"\npassword_file = "archive.pw"\n'),
    ("broker.tls_ca", '[broker]\nport = {port}\ntls_ca = "broker-ca.pem"\n'),
    ("http.cert_file", '[broker]\nport = {port}\n[http]\ncert_file = "server.pem"\nkey_file = "server.key"\n'
                       'password_file = "http.passwd"\n'),
    ("http.key_file", '[broker]\nport = {port}\n[http]\ncert_file = "ca.pem"\nkey_file = "server.key"\n'
                      'password_file = "http.passwd"\n'),
])
def test_archive_run_names_the_key_and_the_missing_file(key: str, text: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "archive.toml"
    cfg.write_text(text.format(port=free_port()))
    secret(tmp_path / "ca.pem", "cert", 0o644)
    secret(tmp_path / "http.passwd", "station-01:$7$101$c2FsdA==$aGFzaA==\n")
    path = tmp_path / cfg.read_text().split(key.split(".")[1] + ' = "')[1].split('"')[0]
    assert not path.exists()
    assert cli.main(["archive", "run", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"config {key}: {path}: no such" in err and "\n" not in err and "Traceback" not in err, err
