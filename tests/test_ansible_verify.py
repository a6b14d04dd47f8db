"""The role's verify step (files/wait_online.py) against a real mosquitto broker.

The converge test runs in a chroot, where systemd does not run and the verify step is
skipped; this checks the script the role runs on a booted host: exit 0 once the node's
availability topic says ``online`` (with the password read from the credential file),
1 when it does not within the timeout, 2 when the broker cannot be reached.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt import publish

from tests.support.mosquitto import Mosquitto, free_port, require_binaries

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "ansible" / "roles" / "edge_pose" / "files" / "wait_online.py"
TOPIC = "edge-pose/shelf/availability"
USER, PASSWORD = "edge-pose", "pw-from-credential"

pytestmark = pytest.mark.ansible


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    require_binaries("mosquitto", "mosquitto_passwd")
    b = Mosquitto.create(tmp_path_factory.mktemp("mosq"), users={USER: PASSWORD}).start()
    yield b
    b.stop()


def _wait(url: str, password_file: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, "--topic", TOPIC, "--username", USER,
         "--password-file", str(password_file), "--timeout", str(timeout_s)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _credential(tmp_path: Path) -> Path:
    path = tmp_path / "mqtt-password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


def _publish(broker: Mosquitto, payload: str) -> None:
    publish.single(
        TOPIC, payload, qos=1, retain=True, hostname=broker.host, port=broker.port,
        auth={"username": USER, "password": PASSWORD},
    )  # fmt: skip


def test_online_is_seen(broker: Mosquitto, tmp_path: Path) -> None:
    _publish(broker, "online")
    proc = _wait(broker.url, _credential(tmp_path), 20)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{TOPIC} = online"


def test_offline_node_fails_after_timeout(broker: Mosquitto, tmp_path: Path) -> None:
    _publish(broker, "offline")
    proc = _wait(broker.url, _credential(tmp_path), 2)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no 'online' within 2 s" in proc.stdout
    assert "['offline']" in proc.stdout


def test_unreachable_broker_is_reported_not_failed(tmp_path: Path) -> None:
    proc = _wait(f"mqtt://127.0.0.1:{free_port()}", _credential(tmp_path), 2)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("cannot connect:")
