"""`edge-pose listen`, `edge-pose mqtt` and the embedded broker, against real brokers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from edge.cli import main
from edge.pose.types import Pose, PoseResult
from edge.publish import MqttSettings, Publisher
from edge.publish.embedded_broker import EmbeddedBroker
from edge.result_format import schema
from tests.support.mosquitto import Mosquitto, MqttRecorder

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto.create(tmp_path / "broker").start()
    yield b
    b.kill()


def _result(i: int, n: int = 1) -> PoseResult:
    lm = np.zeros((33, 5), np.float32)
    lm[:, 0] = 0.25 + 0.001 * i
    lm[:, 1] = 0.5
    pose = Pose(0, 0.9, lm, np.zeros((33, 3), np.float32))
    return PoseResult(i * 40_000_000, 640, 480, (pose,) * n)


def _pub(port: int, node_id: str, **kwargs: Any) -> Publisher:
    return Publisher(MqttSettings(port=port, node_id=node_id, discovery=False, **kwargs))


def _listen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "listen", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _wait_subscribed(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("listening on"), line


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_listen_prints_records_and_exits_after_count(
    broker: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    out = tmp_path / "poses.jsonl"
    proc = _listen(
        "--url", broker.url, "--node", "cli", "--count", "8", "--timeout", "30",
        "--record", str(out), "--protocol", protocol,
    )  # fmt: skip
    _wait_subscribed(proc)
    pub = Publisher(
        MqttSettings(port=broker.port, node_id="cli", protocol=protocol, discovery=False)
    )
    pub.start()
    assert pub.wait_connected(10)
    for i in range(10):
        pub.publish_result(_result(i), i, "cam0")
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=30)
    pub.stop()
    assert proc.returncode == 0, stderr
    lines = [ln for ln in stdout.splitlines() if " frame " in ln]
    assert len(lines) == 8
    assert lines[0].startswith("cli  frame 0  people 1  nose (0.250, 0.500)")
    assert ("latency" in lines[-1]) == (protocol == "5")  # publish time rides on MQTT 5
    assert "received 8 pose messages" in stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(8))
    validator = Draft202012Validator(schema())
    for r in records:
        validator.validate(r)


def test_listen_times_out_and_reports_connection_errors(broker: Mosquitto) -> None:
    proc = _listen("--url", broker.url, "--count", "1", "--timeout", "1")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "timeout" in stderr
    port = broker.port
    broker.kill()
    proc = _listen("--url", f"mqtt://127.0.0.1:{port}", "--timeout", "1")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3 and "Connection refused" in stderr


def test_listen_decodes_cbor_and_survives_garbage(broker: Mosquitto) -> None:
    proc = _listen("--url", broker.url, "--count", "3", "--timeout", "30")
    _wait_subscribed(proc)
    import paho.mqtt.publish as single

    single.single(
        "edge-pose/x/pose", b"\xc1\xc1 not a record", hostname="127.0.0.1", port=broker.port
    )
    pub = Publisher(MqttSettings(port=broker.port, node_id="x", encoding="cbor", discovery=False))
    pub.start()
    assert pub.wait_connected(10)
    for i in range(3):
        pub.publish_result(_result(i), i, "cam")
    stdout, stderr = proc.communicate(timeout=30)
    pub.stop()
    assert proc.returncode == 0, stderr
    assert "undecodable message on edge-pose/x/pose" in stderr
    assert [ln.split("  ")[1] for ln in stdout.splitlines() if " frame " in ln] == [
        "frame 0",
        "frame 1",
        "frame 2",
    ]


def test_mqtt_test_connection_and_discovery_print(
    broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mqtt", "test-connection", "--url", broker.url]) == 0
    assert "OK: connected" in capsys.readouterr().out
    assert main(["mqtt", "discovery", "--node", "shelf"]) == 0
    out = capsys.readouterr().out
    assert "homeassistant/binary_sensor/shelf/presence/config" in out
    assert main(["mqtt", "discovery", "--node", "bad/node"]) == 1
    assert main(["mqtt", "test-connection", "--url", "mqtt://u:pw@127.0.0.1:1"]) == 3
    assert "password in the broker URL" in capsys.readouterr().err


def test_embedded_broker_serves_paho_and_mosquitto_sub() -> None:
    with EmbeddedBroker(port=0) as emb:
        assert emb.host == "127.0.0.1"
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(emb.port), "-t", "edge-pose/emb/#",
             "-v", "-C", "3", "-W", "20"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        rec = MqttRecorder(emb.port, ["edge-pose/emb/#"])
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal
        pub = Publisher(MqttSettings(port=emb.port, node_id="emb", discovery=False))
        pub.start()
        assert pub.wait_connected(10)
        pub.publish_result(_result(0), 0, "cam")
        out, _ = sub.communicate(timeout=30)
        lines = out.splitlines()
        assert "edge-pose/emb/availability online" in lines
        assert any(ln.startswith('edge-pose/emb/pose {"v":1,"frame":0') for ln in lines)
        assert rec.wait_for(lambda _m: len(rec.on("edge-pose/emb/pose")) == 1)
        pub.stop()
        rec.close()


def test_embedded_broker_requires_password_off_loopback() -> None:
    with pytest.raises(ValueError, match="username and password"):
        EmbeddedBroker(host="0.0.0.0")
    with EmbeddedBroker(port=0, username="edge", password="Open-Sesame-9") as emb:
        bad = Publisher(
            MqttSettings(
                port=emb.port, node_id="e1", username="edge", password="nope", discovery=False
            )
        )
        bad.start()
        deadline = time.monotonic() + 10
        while not bad.counters.auth_failed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bad.counters.auth_failed and bad.counters.connects == 0
        bad.stop()
        good = Publisher(
            MqttSettings(
                port=emb.port,
                node_id="e2",
                username="edge",
                password="Open-Sesame-9",
                discovery=False,
            )
        )
        good.start()
        assert good.wait_connected(10)
        good.stop()
