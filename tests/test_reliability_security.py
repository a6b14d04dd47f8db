"""Security posture of the real daemon:

* ``mqtts://`` verifies the broker's certificate by default: against a broker whose CA
  we do not configure, the daemon does not connect (and says why), inference goes on;
* the MQTT password comes only from a file or a credential: never a flag, never in a
  URL or an environment variable, never in the log (wrong password, reload, clean
  stop: the whole output is searched), never in ``config show``, the command line or
  the environment of the process;
* nothing listens on a network port unless configured: with a broker URL the daemon
  has no listening socket at all; the embedded broker listens on loopback only, and
  beyond loopback only with a user name and password, which it then enforces.

(The unit's ``systemd-analyze security`` exposure score is checked in test_systemd.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.app import mqtt_settings
from edge.config import load_config
from edge.publish.client import tls_context
from edge.publish.embedded_broker import EmbeddedBroker
from tests.support.faults import (
    EDGE_POSE,
    DaemonProcess,
    daemon_env,
    listening_sockets,
    model_precision,
    read_state,
    small_clip,
    wait_state,
    write_config,
)
from tests.support.mosquitto import BrokerFactory, free_port, make_tls_files

PASSWORD = "Pw-0f-the-shelf-9c1e"
WRONG = "not-the-password-77aa"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    out = tmp_path_factory.mktemp("clip") / "dance-small.mp4"
    return small_clip(shared_data / "video" / "dance.mp4", out, width=192, frames=60)


def _base_config(clip: Path, state: Path) -> dict[str, dict[str, object]]:
    return {
        "source": {"uri": str(clip), "loop": True, "realtime": True},
        "models": {"precision": model_precision(), "threads": 1},
        "mqtt": {"node_id": "sec", "base_topic": "sec", "discovery": False},
        "stats": {"interval_s": 1.0, "state_file": str(state)},
    }


def test_mqtts_verifies_the_certificate_by_default(tmp_path: Path) -> None:
    loaded = load_config(None, env={}, overrides={"mqtt": {"url": "mqtts://broker.lan"}})
    settings = mqtt_settings(loaded.config.mqtt, None)
    assert (settings.tls, settings.tls_insecure, settings.port) == (True, False, 8883)
    ctx = tls_context(settings)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True


@pytest.mark.slow
def test_daemon_refuses_a_broker_it_cannot_verify(
    tmp_path: Path, clip: Path, mosquitto_factory: BrokerFactory
) -> None:
    tls = make_tls_files(tmp_path / "pki")
    broker = mosquitto_factory(tls=tls)
    state = tmp_path / "stats.json"
    cfg = _base_config(clip, state)
    cfg["mqtt"]["url"] = broker.url  # mqtts://, no ca_file: the system CAs do not know ours
    config = write_config(tmp_path / "config.toml", cfg)
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        daemon.wait_log(r"MQTT: cannot connect to mqtts://\S+: .*CERTIFICATE_VERIFY_FAILED", 120)
        wait_state(state, lambda s: s.get("frames_processed", 0) >= 10, 60)
        assert read_state(state)["mqtt_connects"] == 0
    finally:
        rc = daemon.stop()
    assert rc == 0
    assert "Traceback" not in daemon.log_text()


@pytest.mark.slow
def test_password_only_from_a_file_and_never_shown(
    tmp_path: Path, clip: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker = mosquitto_factory(users={"edge": PASSWORD})
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(WRONG + "\n")
    password_file.chmod(0o600)
    state = tmp_path / "stats.json"
    cfg = _base_config(clip, state)
    cfg["mqtt"].update({"url": broker.url, "username": "edge", "password_file": str(password_file)})
    config = write_config(tmp_path / "config.toml", cfg)
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        # A wrong password: refused, says so once, stops retrying, inference goes on.
        daemon.wait_log(r"MQTT: \S+ refused us: .*not retrying", 120)
        wait_state(state, lambda s: s.get("frames_processed", 0) >= 5, 60)
        # Nothing of the daemon listens anywhere: the broker is configured.
        assert listening_sockets(daemon.pid) == []
        # The right password arrives in the file; SIGHUP reloads it.
        password_file.write_text(PASSWORD + "\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_log(r"reload: changed sections: mqtt", 60)
        daemon.wait_log(r"MQTT: connected to", 60)
        wait_state(state, lambda s: s.get("pose_sent", 0) >= 5, 60)
        cmdline = Path(f"/proc/{daemon.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{daemon.pid}/environ").read_bytes()
        assert PASSWORD.encode() not in cmdline and PASSWORD.encode() not in environ
        show = subprocess.run(
            [*EDGE_POSE, "config", "show", "--config", str(config)],
            env=daemon_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert show.returncode == 0, show.stderr
        assert "password" in show.stdout and "********" in show.stdout
        assert PASSWORD not in show.stdout + show.stderr
    finally:
        rc = daemon.stop()
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert PASSWORD not in log and WRONG not in log


def test_no_password_flag_and_none_in_urls_or_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from edge.cli import main

    with pytest.raises(SystemExit) as help_exit:
        main(["run", "--help"])
    assert help_exit.value.code == 0
    assert "--password" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as flag_exit:
        main(["run", "--password", PASSWORD])
    assert flag_exit.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    for name in [n for n in os.environ if n.startswith("EDGE_POSE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    for text, env in (
        (f'[mqtt]\nurl = "mqtt://edge:{PASSWORD}@127.0.0.1:1883"\n', {}),
        ("", {"EDGE_POSE_MQTT__PASSWORD": PASSWORD}),
        (f'[mqtt]\npassword = "{PASSWORD}"\n', {}),
    ):
        config.write_text(text)
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            caplog.clear()
            status = main(["config", "check", str(config)])
        captured = capsys.readouterr()
        out = captured.out + captured.err + caplog.text
        assert status == 78, out
        assert "mqtt.url" in out or "MQTT__PASSWORD" in out or "mqtt.password" in out, out
        assert PASSWORD not in out, out


@pytest.mark.slow
def test_embedded_broker_listens_on_loopback_only(tmp_path: Path, clip: Path) -> None:
    port = free_port()
    state = tmp_path / "stats.json"
    cfg = _base_config(clip, state)
    cfg["mqtt"]["embedded_port"] = port  # no url: the embedded broker
    config = write_config(tmp_path / "config.toml", cfg)
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        daemon.wait_log(r"first frame processed", 120)
        wait_state(state, lambda s: s.get("mqtt_connected") is True, 60)
        listeners = listening_sockets(daemon.pid)
        assert listeners, "the embedded broker should listen"
        assert {(x.address, x.port) for x in listeners} == {("127.0.0.1", port)}
        ss_binary = shutil.which("ss")  # iproute2, when installed: the usual tool agrees
        if ss_binary is not None:
            ss = subprocess.run([ss_binary, "-ltnH"], capture_output=True, text=True, check=False)
            assert f"127.0.0.1:{port}" in ss.stdout
            assert f"0.0.0.0:{port}" not in ss.stdout and f"*:{port}" not in ss.stdout
    finally:
        rc = daemon.stop()
    assert rc == 0, daemon.log_text()[-3000:]


def test_embedded_broker_beyond_loopback_requires_and_enforces_a_password(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "c.toml", {"mqtt": {"embedded_bind": "0.0.0.0"}})
    proc = subprocess.run(
        [*EDGE_POSE, "run", "--config", str(config)],
        env=daemon_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 78
    assert "mqtt.embedded_bind" in proc.stderr and "password" in proc.stderr
    with pytest.raises(ValueError, match="password"):
        EmbeddedBroker("0.0.0.0", free_port())
    port = free_port()
    with EmbeddedBroker("0.0.0.0", port, username="edge", password=PASSWORD):
        assert _connect(port, None, None) != 0  # anonymous: refused
        assert _connect(port, "edge", WRONG) != 0
        assert _connect(port, "edge", PASSWORD) == 0


def _connect(port: int, user: str | None, password: str | None) -> int:
    """CONNACK reason code of one connection attempt (0 = accepted)."""
    import threading

    result: list[int] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}")
    if user is not None:
        client.username_pw_set(user, password)

    def on_connect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        result.append(int(getattr(reason, "value", 0)))
        done.set()

    def on_disconnect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        if not result:
            result.append(-1)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(20)
    client.loop_stop()
    client.disconnect()
    return result[0] if result else -2
