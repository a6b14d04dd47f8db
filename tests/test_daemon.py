"""The real daemon process (`edge-pose run`) against a real mosquitto and real footage:
pose messages and `online` arrive, SIGHUP with a new base topic moves publishing without
a new process, SIGTERM publishes `stopped` and exits 0; bad configs exit 78 naming the key."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.models import int8_file_name
from tests.support.faults import (
    EDGE_POSE,
    daemon_env,
    model_precision,
    stop_piped,
    write_config,
)
from tests.support.mosquitto import Mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A real MQTT client collecting every message on `topic_filter`."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="daemon-test-sub")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def count_on(topic: str, n: int) -> Callable[[list[Message]], bool]:
    return lambda msgs: sum(m.topic == topic for m in msgs) >= n


def payload_on(topic: str, payload: bytes) -> Callable[[list[Message]], bool]:
    return lambda msgs: any(m.topic == topic and m.payload == payload for m in msgs)


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.host, mosquitto.port, "daemon-test/#")
    yield sub
    sub.close()


@pytest.mark.slow
def test_real_daemon_publishes_reloads_topic_and_stops_cleanly(
    tmp_path: Path, shared_data: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    state_file = tmp_path / "stats.json"
    sections: dict[str, dict[str, Any]] = {
        "source": {"uri": str(shared_data / "video" / "dance.mp4"), "loop": True},
        "models": {"precision": model_precision(), "threads": 1},
        "mqtt": {"url": mosquitto.url, "node_id": "dancer", "base_topic": "daemon-test/a"},
        "stats": {"interval_s": 1.0, "state_file": str(state_file)},
    }
    config = write_config(tmp_path / "config.toml", sections)
    proc = subprocess.Popen(
        [*EDGE_POSE, "run", "--config", str(config)],
        env=daemon_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert subscriber.wait_for(payload_on("daemon-test/a/dancer/availability", b"online"), 60)
        poses_arrived = subscriber.wait_for(count_on("daemon-test/a/dancer/pose", 5), 60)
        assert poses_arrived, stop_piped(proc)[1]
        record = json.loads(subscriber.on("daemon-test/a/dancer/pose")[-1].payload)
        assert record["source"].endswith("dance.mp4")
        assert (record["width"], record["height"]) == (514, 496)
        assert len(record["poses"]) == 1
        assert len(record["poses"][0]["landmarks"]) == 33
        assert len(record["poses"][0]["world"]) == 33
        # the dancer is inside the frame: her nose is, in normalised coordinates
        nose_x, nose_y = record["poses"][0]["landmarks"][0][:2]
        assert 0.0 < nose_x < 1.0
        assert 0.0 < nose_y < 1.0

        # SIGHUP with a new base topic: same process, new topic, old one says `stopped`.
        sections["mqtt"]["base_topic"] = "daemon-test/b"
        write_config(config, sections)
        proc.send_signal(signal.SIGHUP)
        assert subscriber.wait_for(payload_on("daemon-test/b/dancer/availability", b"online"), 30)
        assert subscriber.wait_for(count_on("daemon-test/b/dancer/pose", 3), 30)
        assert subscriber.wait_for(payload_on("daemon-test/a/dancer/availability", b"stopped"), 10)
        assert proc.poll() is None
        assert subscriber.wait_for(
            lambda msgs: any(
                m.topic == "daemon-test/b/dancer/stats"
                and json.loads(m.payload).get("reloads") == 1
                for m in msgs
            ),
            30,
        )
        stats = json.loads(subscriber.on("daemon-test/b/dancer/stats")[-1].payload)
        assert stats["pid"] == proc.pid
        assert stats["frames_processed"] > 0
        assert stats["frame_errors"] == 0
        on_file = json.loads(state_file.read_text(encoding="utf-8"))
        assert on_file["pid"] == proc.pid
        # `edge-pose status` reads the state file
        status = subprocess.run(
            [*EDGE_POSE, "status", "--config", str(config)],
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert "node dancer" in status.stdout
        assert "fps" in status.stdout
        # ... and the retained stats on the broker
        remote = subprocess.run(
            [
                *EDGE_POSE,
                *("status", "--from-broker", "--url", mosquitto.url),
                *("--base-topic", "daemon-test/b/dancer", "--json"),
            ],
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=60,
            check=False,
        )
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout)["node_id"] == "dancer"
        pose_count_before_stop = len(subscriber.on("daemon-test/b/dancer/pose"))
    finally:
        rc, out = stop_piped(proc)
    assert rc == 0, out[-3000:]
    assert subscriber.wait_for(payload_on("daemon-test/b/dancer/availability", b"stopped"), 10)
    assert len(subscriber.on("daemon-test/b/dancer/pose")) >= pose_count_before_stop
    assert "reload: changed sections: mqtt" in out
    assert "Traceback" not in out


# --- bad configs: the real process exits 78 naming the key -----------------------------------


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[source]\nurl = 'x'\n", {}, "source.url"),
        ("[models]\nthreads = 'many'\n", {}, "models.threads"),
        ("[stats]\ninterval_s = 0.01\n", {}, "stats.interval_s"),
        ("[mqtt]\nusername = 'u'\npassword_file = '/nonexistent/pw'\n", {}, "mqtt.password_file"),
        ("", {"EDGE_POSE_MQTT__QOS": "7"}, "EDGE_POSE_MQTT__QOS"),
        ("", {"EDGE_POSE_SOURCE__NOPE": "1"}, "EDGE_POSE_SOURCE__NOPE"),
        ("[source]\nuri = '/nonexistent/clip.mp4'\n", {}, "source.uri"),
    ],
)
def test_bad_config_exits_78_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], needle: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(toml, encoding="utf-8")
    proc = subprocess.run(
        [*EDGE_POSE, "run", "--config", str(config)],
        env=daemon_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_has_no_password_flag() -> None:
    proc = subprocess.run(
        [*EDGE_POSE, "run", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert "--config" in proc.stdout
    assert "--password" not in proc.stdout
    bad = subprocess.run(
        [*EDGE_POSE, "run", "--password", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2


@pytest.mark.parametrize("marker", ["edge-pose starting", "embedded MQTT broker listening"])
def test_sigterm_during_start_up_exits_0(tmp_path: Path, shared_data: Path, marker: str) -> None:
    """SIGTERM while the config, broker or models load: a clean exit 0, never a traceback."""
    port = free_port()
    config = write_config(
        tmp_path / "config.toml",
        {
            "source": {"uri": str(shared_data / "video" / "dance.mp4")},
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {"embedded_port": port},
        },
    )
    proc = subprocess.Popen(
        [*EDGE_POSE, "run", "--config", str(config)],
        env=daemon_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert any(marker in line for line in seen), "".join(seen)
    assert proc.wait(timeout=60) == 0, "".join(seen) + rest
    assert "source ended" not in rest, "the signal must stop it, not the end of the clip"
    assert "Traceback" not in rest


def test_corrupt_model_exits_65_naming_the_file(tmp_path: Path, float_models_dir: Path) -> None:
    """The checksum check at start-up: a truncated model file is named, status 65."""
    import hashlib
    import shutil

    lines = ["schema = 1"]
    for role, name in (("detector", "pose_detection"), ("lite", "pose_landmark_lite")):
        target = tmp_path / int8_file_name(role)  # type: ignore[arg-type]
        shutil.copyfile(float_models_dir / f"{name}.tflite", target)
        data = target.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        lines += [f"[models.{role}]", f'file = "{target.name}"', f'sha256 = "{digest}"']
        lines.append(f"size_bytes = {len(data)}")
    (tmp_path / "manifest.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lite = tmp_path / int8_file_name("lite")
    lite.write_bytes(lite.read_bytes()[:1000])  # truncated after the manifest was written
    env = daemon_env()
    env["EDGE_POSE_MODELS_DIR"] = str(tmp_path)
    env["EDGE_POSE_MQTT__EMBEDDED_PORT"] = str(free_port())
    proc = subprocess.run(
        [*EDGE_POSE, "run", "--config", str(write_config(tmp_path / "c.toml", {}))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 65, proc.stderr[-2000:]
    assert f"model {lite} is corrupt" in proc.stderr
    assert "detector" not in proc.stderr.split("cannot start:")[1].split("corrupt")[0]
