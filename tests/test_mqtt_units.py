"""MQTT building blocks without a broker: validation, outbox, backoff, discovery, encodings."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pose.types import Pose, PoseResult
from edge.publish import (
    MqttSettings,
    Publisher,
    parse_broker_url,
    read_secret,
    validate_base_topic,
    validate_node_id,
)
from edge.publish.backoff import Backoff
from edge.publish.discovery import REQUIRED_KEYS, config_topics, discovery_messages
from edge.publish.encoding import decode_record, downscale_mask, encode_mask_png, encode_pose
from edge.publish.outbox import Outbox, OutMessage
from edge.result_format import to_record


def _result(n_people: int, ts_ns: int = 0) -> PoseResult:
    rng = np.random.default_rng(n_people)
    poses = tuple(
        Pose(
            id=i,
            score=0.9,
            landmarks=rng.random((33, 5)).astype(np.float32),
            world=rng.random((33, 3)).astype(np.float32),
        )
        for i in range(n_people)
    )
    return PoseResult(timestamp_ns=ts_ns, width=640, height=480, poses=poses)


@pytest.mark.parametrize("node_id", ["kitchen", "pi-5_a", "Küche", "n" * 64])
def test_node_id_accepted(node_id: str) -> None:
    assert validate_node_id(node_id) == node_id


@pytest.mark.parametrize(
    "node_id", ["", "a/b", "a+b", "a#", "a\x00b", "a\nb", " a", "$SYS", ".", "..", "n" * 65]
)
def test_node_id_rejected(node_id: str) -> None:
    with pytest.raises(ValueError, match="node_id"):
        validate_node_id(node_id)


@pytest.mark.parametrize(
    "topic",
    ["", "/a", "a/", "a//b", "a/+/b", "a/#", "a/../b", "a/./b", "$SYS/x", "a\x00", "x" * 201],
)
def test_base_topic_rejected(topic: str) -> None:
    with pytest.raises(ValueError, match="base_topic"):
        validate_base_topic(topic)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_node_id_cannot_escape_its_level(text: str) -> None:
    """Whatever a user types, an accepted node id is exactly one topic level under the base."""
    try:
        node = validate_node_id(text)
    except ValueError:
        return
    s = MqttSettings(node_id=node)
    assert s.base_topic.split("/") == ["edge-pose", node]
    for topic in (f"{s.base_topic}/pose", *config_topics(s)):
        assert "+" not in topic and "#" not in topic and "\x00" not in topic
    assert all(level not in {"", ".", ".."} for level in s.base_topic.split("/"))


def test_parse_broker_url() -> None:
    a = parse_broker_url("mqtt://broker.lan")
    assert (a.host, a.port, a.tls) == ("broker.lan", 1883, False)
    b = parse_broker_url("mqtts://pi@10.0.0.2:8884")
    assert (b.host, b.port, b.tls, b.username) == ("10.0.0.2", 8884, True, "pi")
    assert parse_broker_url("mqtts://h").port == 8883
    for bad in ("http://h", "mqtt://", "mqtt://u:pw@h", "mqtt://h:99999", "mqtt://h/x"):
        with pytest.raises(ValueError, match="url"):
            parse_broker_url(bad)


def test_password_never_in_repr_and_read_from_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt-password").write_text("s3cr3t-Pa55\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    password = read_secret(None, "mqtt-password")
    assert password == "s3cr3t-Pa55"
    s = MqttSettings(node_id="n", username="u", password=password)
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s)
    assert "s3cr3t" not in repr(Publisher(s))
    with pytest.raises(ValueError, match="password_file") as err:
        read_secret(tmp_path / "missing", None)
    assert "s3cr3t" not in str(err.value)


def test_settings_defaults_and_errors() -> None:
    s = MqttSettings(node_id="kitchen")
    assert (s.base_topic, s.client_id, s.pose_qos, s.pose_queue_max) == (
        "edge-pose/kitchen",
        "edge-pose-kitchen",
        0,
        150,
    )
    with pytest.raises(ValueError, match="tls_insecure"):
        MqttSettings(tls_insecure=True)
    with pytest.raises(ValueError, match="pose_qos"):
        MqttSettings(pose_qos=3)
    with pytest.raises(ValueError, match="base_topic"):
        MqttSettings(base_topic="a/#")


def test_outbox_keeps_latest_state_and_bounded_poses_in_order() -> None:
    box = Outbox(pose_max=3)
    for i in range(5):
        box.put_pose(OutMessage("p", f"pose{i}".encode(), 0, False))
        box.put_state(OutMessage("count", str(i).encode(), 1, True))
    assert box.pose_dropped == 2 and box.pose_enqueued == 5
    assert box.state_coalesced == 4
    taken = box.take(100)
    assert [m.payload for m in taken] == [b"pose2", b"pose3", b"pose4", b"4"]
    assert len(box) == 0


def test_outbox_first_and_requeue() -> None:
    box = Outbox(pose_max=2)
    box.put_pose(OutMessage("p", b"a", 0, False))
    box.put_state(OutMessage("availability", b"online", 1, True), first=True)
    taken = box.take(10)
    assert [m.payload for m in taken] == [b"online", b"a"]
    box.put_pose(OutMessage("p", b"b", 0, False))
    box.put_pose(OutMessage("p", b"c", 0, False))
    box.requeue(taken)  # the queue is full: the requeued pose is the oldest and is dropped
    assert box.pose_dropped == 1
    assert [m.payload for m in box.take(10)] == [b"online", b"b", b"c"]


def test_backoff_grows_with_jitter_and_resets() -> None:
    b = Backoff(0.5, 8.0, random.Random(1))
    delays = [b.next_delay_s() for _ in range(12)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert max(delays[6:]) > 2.0  # it grew
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered
    b.reset()
    assert b.next_delay_s() == 0.5


def test_discovery_configs_have_required_keys() -> None:
    s = MqttSettings(node_id="kitchen", configuration_url="http://pi.local:8080")
    msgs = discovery_messages(s)
    assert [t for t, _ in msgs] == config_topics(s)
    components = set()
    for topic, payload in msgs:
        prefix, component, node, object_id, last = topic.split("/")
        assert (prefix, node, last) == ("homeassistant", "kitchen", "config")
        config = json.loads(payload)
        components.add((component, config.get("device_class")))
        for key in REQUIRED_KEYS[component]:
            assert key in config, (topic, key)
        assert config["unique_id"].endswith(object_id)
        assert config["device"]["identifiers"] == ["edge_pose_kitchen"]
        assert config["device"]["configuration_url"] == "http://pi.local:8080"
        assert config["availability"][0]["topic"] == "edge-pose/kitchen/availability"
    assert ("binary_sensor", "occupancy") in components
    diag = [json.loads(p) for _, p in msgs if b"diagnostic" in p]
    assert {d["value_template"] for d in diag} == {
        "{{ value_json.fps }}",
        "{{ value_json.inference_ms_p50 if value_json.inference_ms_p50 is defined "
        "else value_json.latency_ms.p50_ms }}",
    }


@pytest.mark.parametrize("encoding", ["json", "msgpack", "cbor"])
def test_pose_encodings_round_trip(encoding: str) -> None:
    result = _result(2, 5_000_000)
    payload = encode_pose(result, 7, "cam", encoding)
    decoded = decode_record(payload, encoding)
    expected = to_record(result, 7, "cam")
    assert {k: v for k, v in decoded.items() if k != "poses"} == {
        k: v for k, v in expected.items() if k != "poses"
    }
    for got, want in zip(decoded["poses"], expected["poses"], strict=True):
        assert got["id"] == want["id"]
        # compact encodings carry float32: the 5 significant digits survive
        np.testing.assert_allclose(got["landmarks"], want["landmarks"], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["world"], want["world"], rtol=1e-6, atol=1e-7)


def test_compact_encodings_are_smaller() -> None:
    result = _result(1)
    sizes = {e: len(encode_pose(result, 0, "cam", e)) for e in ("json", "msgpack", "cbor")}
    assert sizes["msgpack"] < 0.8 * sizes["json"] and sizes["cbor"] < 0.8 * sizes["json"]


def test_mask_is_downscaled_png() -> None:
    import cv2

    mask = np.zeros((480, 640), np.float32)
    mask[100:300, 200:400] = 1.0
    small = downscale_mask(mask, 64)
    assert small.shape == (48, 64) and small.dtype == np.uint8
    assert small.max() == 255 and small.min() == 0
    png = encode_mask_png(mask, 64)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, small)


def test_publish_result_is_queue_only_and_follows_presence() -> None:
    """Without a broker (never started) everything is queued: poses up to the bound."""
    pub = Publisher(MqttSettings(node_id="n", pose_queue_max=4, discovery=False))
    counts = [0, 1, 1, 2, 0, 0, 1]
    for i, n in enumerate(counts):
        pub.publish_result(_result(n, i * 33_000_000), i, "cam")
    c = pub.counters
    # pose messages: frames with people (1, 2, 3, 6) + one empty when they left (4)
    assert (c.pose_enqueued, c.pose_pending, c.pose_dropped) == (5, 4, 1)
    assert not c.connected
    queued = pub._outbox.take(100)
    state = {m.topic.rsplit("/", 1)[1]: m.payload for m in queued if not m.is_pose}
    assert state == {"presence": b"ON", "count": b"1"}


def test_rate_limit_uses_frame_time_and_never_drops_the_empty_message() -> None:
    pub = Publisher(MqttSettings(node_id="n", max_pose_rate_hz=10.0, discovery=False))
    for i in range(30):  # 1 s of 30 fps with people, then nobody
        pub.publish_result(_result(1, i * 33_333_333), i, "cam")
    pub.publish_result(_result(0, 30 * 33_333_333), 30, "cam")
    c = pub.counters
    assert c.pose_enqueued == 10 + 1  # 10 per second + the empty one
    assert c.pose_rate_limited == 20
