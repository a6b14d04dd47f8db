"""Hostile MQTT traffic against the real daemon process and a real mosquitto.

The daemon subscribes to one topic: Home Assistant's ``<discovery_prefix>/status``.
Whatever arrives there (a retained 1 MB binary blob waiting at subscribe time, empty,
NUL, invalid UTF-8, 10 MB, JSON, look-alikes of ``online``, a flood of 300 real
``online`` in a row) must not stop it publishing, and only a real ``online`` re-announces
discovery. Messages on its own topics (spoofed availability, garbage poses) change nothing.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.faults import DaemonProcess, model_precision, small_clip, write_config
from tests.support.mosquitto import Mosquitto, MqttRecorder

BASE, NODE, PREFIX = "hostile", "n1", "hass-hostile"
TOPIC = f"{BASE}/{NODE}"
STATUS = f"{PREFIX}/status"

HOSTILE_PAYLOADS: list[bytes] = [
    b"",
    b"\x00",
    b"\x00" * 64,
    b"\xff\xfe\xfd",
    b"online\x00",
    b"onl\xffine",
    b"  ONLINE  \n",  # accepted: case and surrounding space do not matter
    b"offline",
    b'{"status": "online"}',
    b"online" * 11,  # 66 bytes: over the status length limit
    os.urandom(1 << 20),
    b"o" * (10 << 20),
]


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hostile-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _send(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(timeout=30)
    assert info.is_published()


@pytest.fixture
def attacker(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = _publisher(mosquitto.port)
    yield client
    client.loop_stop()
    client.disconnect()


@pytest.mark.slow
def test_hostile_payloads_on_subscribed_and_own_topics_never_stop_publishing(
    tmp_path: Path, shared_data: Path, mosquitto: Mosquitto, attacker: mqtt.Client
) -> None:
    clip = small_clip(shared_data / "video" / "dance.mp4", tmp_path / "clip.mp4", 192, 60)
    config = write_config(
        tmp_path / "config.toml",
        {
            "source": {"uri": str(clip), "loop": True, "realtime": True},
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {
                "url": mosquitto.url,
                "node_id": NODE,
                "base_topic": BASE,
                "discovery": True,
                "discovery_prefix": PREFIX,
            },
            "stats": {"interval_s": 1.0, "state_file": str(tmp_path / "stats.json")},
        },
    )
    # Waiting for it at subscribe time: a retained binary megabyte on the status topic.
    _send(attacker, STATUS, os.urandom(1 << 20), retain=True)
    rec = MqttRecorder(mosquitto.port, [f"{BASE}/#", f"{PREFIX}/#"])
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        assert rec.wait_for(lambda m: len(rec.on(f"{TOPIC}/pose")) >= 5, 120), daemon.log_text()
        discovery = [m for m in rec.messages if m.topic.endswith("/config")]
        assert discovery
        rss_before = daemon.rss_kb()

        def announce_count() -> int:
            return daemon.log_text().count("Home Assistant is online")

        for payload in HOSTILE_PAYLOADS:
            _send(attacker, STATUS, payload)
        # Spoofed messages on the daemon's own topics.
        _send(attacker, f"{TOPIC}/availability", b"offline")
        _send(attacker, f"{TOPIC}/pose", os.urandom(4096))
        _send(attacker, f"{TOPIC}/set", b'{"node_id": "../../x"}')
        _send(attacker, f"{PREFIX}/binary_sensor/{NODE}/config", b"")
        # A flood of real announcements: coalesced, never an unbounded queue.
        for _ in range(300):
            attacker.publish(STATUS, b"online", qos=0)
        _send(attacker, STATUS, b"online")

        before = len(rec.on(f"{TOPIC}/pose"))
        assert rec.wait_for(lambda m: len(rec.on(f"{TOPIC}/pose")) >= before + 20, 60)
        assert daemon.alive()
        # "  ONLINE  " and 301 real ones re-announce; the log says so at most once a minute.
        assert 1 <= announce_count() <= 3
        # After the flood the discovery configs and `online` are there again.
        rec.clear()
        _send(attacker, STATUS, b"online")
        assert rec.wait_for(
            lambda m: (
                any(x.topic == f"{TOPIC}/availability" and x.payload == b"online" for x in m)
                and any(x.topic.endswith("/config") for x in m)
            ),
            30,
        )
        assert daemon.rss_kb() - rss_before < 50 * 1024  # the 10 MB payload was not kept
    finally:
        rc = daemon.stop(signal.SIGTERM)
        rec.close()
        _send(attacker, STATUS, b"", retain=True)  # clear the retained blob
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log
    assert "error handling a message" not in log
    # Each accepted announcement is logged; garbage is not echoed into the log.
    assert "\\x00" not in log and "onl\ufffdine" not in log
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frame_errors"] == 0
