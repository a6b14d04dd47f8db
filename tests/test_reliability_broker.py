"""Broker faults, injected for real against the real daemon process:

* the broker is unreachable when the daemon starts (nothing listens on the port),
* mosquitto is SIGKILLed and restarted, three times, while frames flow,
* during the CONNECT handshake something else answers on the port: first a listener
  that accepts and closes at once, then one that accepts and never answers (its
  connection stays open after mosquitto is back, so the client must time the
  handshake out by itself).

Through all of it inference never stops (frames_processed keeps growing during
every outage), each fault is one log line, and the daemon ends with exit 0.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.faults import (
    DaemonProcess,
    HangingListener,
    model_precision,
    read_state,
    small_clip,
    wait_state,
    write_config,
)
from tests.support.mosquitto import Mosquitto, MqttRecorder, require_binaries

BASE = "rel-broker"
NODE = "shelf"
TOPIC = f"{BASE}/{NODE}"


@pytest.fixture
def clip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    out = tmp_path_factory.mktemp("clip") / "dance-small.mp4"
    return small_clip(shared_data / "video" / "dance.mp4", out, width=192, frames=90)


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto with a fixed port, NOT started (the daemon starts first)."""
    require_binaries("mosquitto")
    b = Mosquitto.create(tmp_path_factory.mktemp("mosquitto"))
    yield b
    b.kill()


def _frames(state_file: Path) -> int:
    return int(read_state(state_file).get("frames_processed", 0))


def _frames_grow(state_file: Path, by: int, timeout_s: float = 60.0) -> int:
    """Wait until the daemon processed ``by`` more frames (it is not blocked); the count."""
    start = _frames(state_file)
    state = wait_state(state_file, lambda s: s.get("frames_processed", 0) >= start + by, timeout_s)
    return int(state["frames_processed"])


def _wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _poses(rec: MqttRecorder) -> int:
    return len(rec.on(f"{TOPIC}/pose"))


@pytest.mark.slow
def test_broker_unreachable_killed_restarted_and_impostors(
    tmp_path: Path, clip: Path, broker: Mosquitto
) -> None:
    state_file = tmp_path / "stats.json"
    config = write_config(
        tmp_path / "config.toml",
        {
            "source": {"uri": str(clip), "loop": True, "realtime": True},
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {
                "url": broker.url,
                "node_id": NODE,
                "base_topic": BASE,
                "keepalive_s": 5,
                "queue_size": 20,
                "discovery": False,
            },
            "stats": {"interval_s": 1.0, "state_file": str(state_file)},
        },
    )
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    rec: MqttRecorder | None = None
    try:
        # 1. Unreachable at start-up: it runs anyway, says so once, buffers within a bound.
        daemon.wait_log(r"first frame processed", 120)
        daemon.wait_log(rf"MQTT: cannot connect to {re.escape(broker.url)}: .*; retrying", 30)
        daemon.wait_log(r"MQTT: pose queue full \(20\): dropping the oldest", 60)
        _frames_grow(state_file, 10)
        down = read_state(state_file)
        assert down["mqtt_connected"] is False
        assert down["pose_dropped"] > 0
        assert down["pose_sent"] == 0

        # 2. The broker appears: the daemon connects by itself.
        broker.start()
        rec = MqttRecorder(broker.port, [f"{BASE}/#"])
        assert rec.wait_for(lambda m: _poses(rec) >= 5, 60), daemon.log_text()[-3000:]
        assert any(m.payload == b"online" for m in rec.on(f"{TOPIC}/availability"))

        # 3. Killed and restarted three times while frames flow.
        for i in range(1, 4):
            broker.kill()
            daemon.wait_log(r"MQTT: connection to \S+ lost \(.*\); reconnecting", 60, count=i)
            _frames_grow(state_file, 5)  # inference goes on during the outage
            before = _poses(rec)
            broker.start()
            daemon.wait_log(
                r"MQTT: reconnected after [\d.]+ s; \d+ pose messages queued, \d+ dropped so far",
                60,
                count=i,
            )
            assert rec.wait_for(lambda m, n=before: _poses(rec) >= n + 5, 60)

        # 4a. An impostor that accepts and slams the door during CONNECT. (The recorder
        # is closed first so that every connection the impostors see is the daemon's.)
        rec.close()
        broker.kill()
        daemon.wait_log(r"MQTT: connection to \S+ lost", 60, count=4)
        with HangingListener(broker.port, mode="close") as slam:
            _wait_until(lambda: slam.accepted >= 2, 60)
        daemon.wait_log(r"MQTT: \S+ closed or stalled the connection before CONNACK", 30)
        # 4b. An impostor that accepts and never answers CONNECT; its connection stays
        # open while the real broker comes back, so the client must give up on it itself.
        with HangingListener(broker.port, mode="hang") as hang:
            _wait_until(lambda: hang.accepted >= 1, 60)
            _frames_grow(state_file, 5)  # inference goes on while the handshake hangs
            hang.stop_listening()
            broker.start()
            rec = MqttRecorder(broker.port, [f"{BASE}/#"])
            daemon.wait_log(r"MQTT: reconnected after", 90, count=4)
            assert rec.wait_for(lambda m: _poses(rec) >= 5, 60)
            assert hang.accepted >= 1  # a stalled handshake, timed out by the client
        assert daemon.alive()
        final = wait_state(state_file, lambda s: s.get("mqtt_connected") is True, 30)
        assert final["frame_errors"] == 0
        assert final["mqtt_connects"] >= 5
        assert final["pose_dropped"] > 0  # the outages were counted, not hidden
        assert final["source_faults"] == 0
    finally:
        rc = daemon.stop(signal.SIGTERM)
        if rec is not None:
            stopped = rec.wait_for(
                lambda m: any(x.payload == b"stopped" for x in rec.on(f"{TOPIC}/availability")),
                15,
            )
            rec.close()
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert stopped
    assert "Traceback" not in log
    # The stats in the retained record and the log summary agree on what was dropped.
    summary = re.findall(r"mqtt sent (\d+) dropped (\d+)", log)
    assert summary and int(summary[-1][1]) == read_state(state_file)["pose_dropped"]
    print(
        "broker faults:",
        json.dumps({k: read_state(state_file)[k] for k in ("pose_sent", "pose_dropped")}),
    )
