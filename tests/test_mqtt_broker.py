"""The publisher against a real mosquitto (started on a free loopback port by the test).

End to end with the real pose pipeline on ``video/dance.mp4``, a broker restart
mid-stream, last will, clean stop, authentication, TLS, Home Assistant discovery
and hostile payloads. No fakes: a real broker, real paho subscribers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from jsonschema import Draft202012Validator

from edge.pose.types import Pose, PoseResult
from edge.publish import MqttSettings, Publisher
from edge.publish.discovery import REQUIRED_KEYS, config_topics
from edge.result_format import schema
from tests.support.mosquitto import Mosquitto, MqttRecorder, Received, make_tls_files

REPO = Path(__file__).resolve().parent.parent
SOURCE = "dance.mp4"
VALIDATOR = Draft202012Validator(schema())


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto.create(tmp_path / "broker").start()
    yield b
    b.kill()


def _settings(broker: Mosquitto, **kwargs: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "keepalive_s": 5,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
        "discovery": False,
    }
    values.update(kwargs)
    return MqttSettings(**values)


def _wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class FrameFeed:
    """Frames of dance.mp4 (looped) through the real pose pipeline; blank frames on request."""

    def __init__(self, video: Path) -> None:
        self.video = video
        self.cap = cv2.VideoCapture(str(video))
        self.index = 0
        self.kind = "pipeline"
        self.pipeline: Any = None
        try:
            from edge.pose import PoseOptions, build_pipeline
        except ImportError:  # the pipeline issue has not landed: synthetic results
            self.kind = "synthetic"
            return
        last_error: Exception | None = None
        for precision in ("int8", "float"):
            try:
                self.pipeline = build_pipeline(PoseOptions(precision=precision, num_threads=1))
                self.kind = f"pipeline-{precision}"
                return
            except Exception as exc:  # models not built on this machine: try the next
                last_error = exc
        raise RuntimeError(f"no pose models could be loaded: {last_error}")

    def _read(self) -> np.ndarray[Any, Any]:
        ok, frame = self.cap.read()
        if not ok:
            self.cap.release()
            self.cap = cv2.VideoCapture(str(self.video))
            ok, frame = self.cap.read()
            assert ok, f"cannot read {self.video}"
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def next(self, blank: bool = False) -> tuple[PoseResult, int]:
        image = self._read()
        if blank:
            image = np.zeros_like(image)
        index = self.index
        self.index += 1
        ts_ns = index * 40_000_000
        if self.pipeline is not None:
            return self.pipeline.process(image, ts_ns), index
        time.sleep(0.01)
        n = 0 if blank else 1
        rng = np.random.default_rng(index)
        poses = tuple(
            Pose(
                i,
                0.9,
                rng.random((33, 5)).astype(np.float32),
                rng.random((33, 3)).astype(np.float32),
            )
            for i in range(n)
        )
        return PoseResult(ts_ns, image.shape[1], image.shape[0], poses), index


@pytest.fixture(scope="module")
def feed(request: pytest.FixtureRequest) -> FrameFeed:
    shared = Path(os.environ.get("EDGE_POSE_SHARED_DATA", REPO.parent / "shared" / "data"))
    video = shared / "video" / "dance.mp4"
    if not video.is_file():
        pytest.fail(f"{video} missing (set EDGE_POSE_SHARED_DATA)")
    return FrameFeed(video)


class Expect:
    """Mirror of the publishing rule: which frames produce a pose message."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.people: dict[int, int] = {}
        self.previous: int | None = None

    def add(self, result: PoseResult, index: int) -> bool:
        n = len(result.poses)
        emitted = n > 0 or (self.previous is not None and self.previous > 0)
        if emitted:
            self.frames.append(index)
            self.people[index] = n
        self.previous = n
        return emitted


def _pose_records(rec: MqttRecorder, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in rec.on(topic)]


def _live(rec: MqttRecorder, topic: str) -> list[str]:
    """Payloads forwarded live (not the retained copy sent on subscribe)."""
    return [m.payload.decode() for m in rec.on(topic) if not m.retain]


def _values(rec: MqttRecorder, topic: str) -> list[str]:
    """Payloads in order, repeats collapsed (a retained copy repeats the latest value)."""
    out: list[str] = []
    for m in rec.on(topic):
        if not out or out[-1] != m.payload.decode():
            out.append(m.payload.decode())
    return out


def test_end_to_end_dance_clip(broker: Mosquitto, feed: FrameFeed) -> None:
    base = "edge-pose/e2e"
    rec = MqttRecorder(broker.port, [f"{base}/#"])
    pub = Publisher(_settings(broker, node_id="e2e"))
    pub.start()
    assert pub.wait_connected(10)
    expect = Expect()
    plan = [False] * 20 + [True] * 4 + [False] * 6  # people, nobody, people again
    for step, blank in enumerate(plan):
        result, index = feed.next(blank)
        expect.add(result, index)
        pub.publish_result(result, index, SOURCE)
        if step == 23:  # state topics hold only the latest value: let OFF go out first
            assert rec.wait_for(lambda _m: _live(rec, f"{base}/presence")[-1:] == ["OFF"], 10)
    pub.publish_stats({"fps": 25.0, "inference_ms_p50": 30.0})
    assert rec.wait_for(lambda _m: len(rec.on(f"{base}/pose")) >= len(expect.frames), 20)
    pub.stop()
    assert rec.wait_for(lambda _m: _live(rec, f"{base}/availability")[-1:] == ["stopped"], 10)

    records = _pose_records(rec, f"{base}/pose")
    for record in records:
        VALIDATOR.validate(record)
    assert [r["frame"] for r in records] == expect.frames  # every message, in order
    assert {r["frame"]: len(r["poses"]) for r in records} == expect.people
    assert all(r["source"] == SOURCE and r["width"] == 514 for r in records)
    # presence and count follow the poses: ON, OFF when the last person left, ON again
    assert _live(rec, f"{base}/presence") == ["ON", "OFF", "ON"]
    counts = _live(rec, f"{base}/count")
    assert counts[0] == "1" and counts[-1] == str(expect.previous) and "0" in counts
    assert all(not m.retain for m in rec.on(f"{base}/pose"))
    assert _live(rec, f"{base}/availability") == ["online", "stopped"]
    c = pub.counters
    assert (c.pose_sent, c.pose_dropped, c.pose_pending) == (len(expect.frames), 0, 0)
    rec.close()
    print(f"e2e ({feed.kind}): {len(plan)} frames, {len(records)} pose messages received")


def test_broker_restart_mid_stream(tmp_path: Path, feed: FrameFeed) -> None:
    """Broker away for several seconds while frames keep flowing: bounded buffer, exact drops.

    The broker comes back empty (no persistence), as after a crash. The publisher
    retries every 3 s, so the test can restart the broker and subscribe before the
    publisher's next attempt: the subscriber then sees everything the publisher sends.
    """
    broker = Mosquitto.create(tmp_path / "b").start()
    base = "edge-pose/outage"
    bound = 10
    rec_a = MqttRecorder(broker.port, [f"{base}/#"])
    pub = Publisher(
        _settings(
            broker,
            node_id="outage",
            pose_queue_max=bound,
            reconnect_min_s=3.0,
            reconnect_max_s=3.0,
        )
    )
    rec_c: MqttRecorder | None = None
    try:
        pub.start()
        assert pub.wait_connected(10)
        phase_a, phase_b, phase_c = Expect(), Expect(), Expect()

        t0, cpu0 = time.monotonic(), time.thread_time()
        for _ in range(10):
            result, index = feed.next()
            phase_a.add(result, index)
            pub.publish_result(result, index, SOURCE)
        rate_a = 10 / (time.monotonic() - t0)
        cpu_a_ms = (time.thread_time() - cpu0) / 10 * 1000
        assert rec_a.wait_for(lambda _m: len(rec_a.on(f"{base}/pose")) == len(phase_a.frames), 15)

        broker.kill()
        rec_a.close()  # its messages stay in rec_a.messages
        assert _wait(lambda: not pub.counters.connected, 10)

        # Keep feeding for several seconds; the last frames are empty (people left).
        publish_s = 0.0
        t0, cpu0 = time.monotonic(), time.thread_time()
        phase_b.previous = phase_a.previous
        n_b = 0
        while n_b < 400 and (n_b < 25 or time.monotonic() - t0 < 3.0):
            result, index = feed.next(blank=False)
            phase_b.add(result, index)
            t_call = time.perf_counter()
            pub.publish_result(result, index, SOURCE)
            if n_b % 10 == 0:
                pub.publish_stats({"fps": 25.0, "inference_ms_p50": 30.0, "phase": "B"})
            publish_s += time.perf_counter() - t_call
            n_b += 1
        for _ in range(3):
            result, index = feed.next(blank=True)
            phase_b.add(result, index)
            pub.publish_result(result, index, SOURCE)
        outage_s = time.monotonic() - t0
        cpu_b_ms = (time.thread_time() - cpu0) / (n_b + 3) * 1000
        during = pub.counters
        assert not during.connected and during.connect_failures >= 1
        assert during.pose_pending == bound
        assert during.pose_dropped == len(phase_b.frames) - bound

        # Right after a failed attempt: restart (same port) and subscribe before the next one.
        failures = pub.counters.connect_failures
        assert _wait(lambda: pub.counters.connect_failures > failures, 10)
        broker.start()
        rec_c = MqttRecorder(broker.port, [f"{base}/#"])
        assert pub.counters.connects == 1, "the publisher reconnected before the subscriber"
        assert pub.wait_connected(15), pub.counters.last_error
        phase_c.previous = phase_b.previous
        for _ in range(6):
            result, index = feed.next()
            phase_c.add(result, index)
            pub.publish_result(result, index, SOURCE)
        pub.publish_stats({"fps": 25.0, "inference_ms_p50": 30.0, "phase": "C"})

        after = phase_b.frames[-bound:] + phase_c.frames
        assert rec_c.wait_for(lambda _m: len(rec_c.on(f"{base}/pose")) >= len(after), 20)
        assert rec_c.wait_for(
            lambda _m: any(b'"phase":"C"' in m.payload for m in rec_c.on(f"{base}/stats")), 10
        )
        records = _pose_records(rec_a, f"{base}/pose") + _pose_records(rec_c, f"{base}/pose")
        got = [r["frame"] for r in records]
        expected = phase_a.frames + after
        assert got == expected, (got[15:], expected[15:], pub.counters)
        for record in records:
            VALIDATOR.validate(record)
        c = pub.counters
        assert c.pose_dropped == len(phase_b.frames) - bound
        assert c.pose_sent == len(expected)
        stats = json.loads(rec_c.on(f"{base}/stats")[-1].payload)
        assert stats["dropped_messages"] == stats["mqtt"]["pose_dropped"] == c.pose_dropped
        assert stats["mqtt"]["disconnects"] == 1 and stats["mqtt"]["connects"] == 2
        # state topics: on reconnect the latest values of the outage (nobody there) come
        # first, then the new frames' changes
        assert _live(rec_c, f"{base}/availability") == ["online"]
        assert _live(rec_c, f"{base}/presence") == ["OFF", "ON"]
        assert _live(rec_c, f"{base}/count") == ["0", "1"]
        first_stats = json.loads(rec_c.on(f"{base}/stats")[0].payload)
        assert first_stats["phase"] == "B"
        # never blocked: publishing cost a negligible share of the frame loop during the outage
        assert publish_s < 0.1 * outage_s, (publish_s, outage_s)
        print(
            f"outage ({feed.kind}): before {rate_a:.1f} frames/s, {cpu_a_ms:.1f} ms CPU/frame; "
            f"during {n_b + 3} frames in {outage_s:.1f} s ({(n_b + 3) / outage_s:.1f} frames/s, "
            f"{cpu_b_ms:.1f} ms CPU/frame), publish share "
            f"{100 * publish_s / outage_s:.2f}%; pose messages sent {c.pose_sent}, received "
            f"{len(records)}, dropped {c.pose_dropped} (= stats {stats['dropped_messages']})"
        )
    finally:
        pub.stop(timeout_s=2)
        if rec_c is not None:
            rec_c.close()
        broker.kill()


CHILD = """
import sys, time
from edge.publish import MqttSettings, Publisher
p = Publisher(MqttSettings(port=int(sys.argv[1]), node_id="will", keepalive_s=5, discovery=False))
p.start()
assert p.wait_connected(10)
print("connected", flush=True)
time.sleep(60)
"""


def test_last_will_on_sigkill_and_stopped_on_clean_exit(broker: Mosquitto) -> None:
    rec = MqttRecorder(broker.port, ["edge-pose/will/availability"])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(broker.port)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "connected"
        assert rec.wait_for(lambda _m: _live(rec, "edge-pose/will/availability") == ["online"])
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert rec.wait_for(
            lambda _m: _live(rec, "edge-pose/will/availability") == ["online", "offline"], 15
        )
    finally:
        child.kill()
        child.wait()
    # a clean stop in this process: `stopped`, retained
    pub = Publisher(_settings(broker, node_id="will"))
    pub.start()
    assert pub.wait_connected(10)
    pub.stop()
    assert rec.wait_for(lambda _m: _live(rec, "edge-pose/will/availability")[-1:] == ["stopped"])
    rec.close()
    late = MqttRecorder(broker.port, ["edge-pose/will/availability"])
    assert late.wait_for(lambda m: len(m) >= 1, 5)
    assert late.messages[0].payload == b"stopped" and late.messages[0].retain
    late.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_wrong_password_stops_retrying_and_is_never_logged(
    tmp_path: Path,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    good, bad = "Right-Horse-42", "Wrong-Battery-77"
    broker = Mosquitto.create(tmp_path / "auth", users={"edge": good}).start()
    try:
        pub = Publisher(
            _settings(broker, node_id="auth", username="edge", password=bad, protocol=protocol)
        )
        pub.start()
        assert _wait(lambda: pub.counters.auth_failed, 10)
        time.sleep(1.5)  # with 0.2-1.0 s backoff it would have retried by now
        c = pub.counters
        assert c.auth_failed and c.connects == 0 and not c.connected
        assert c.last_error is not None and "not retrying" in c.last_error
        assert "0x87" in c.last_error or "0x86" in c.last_error, c.last_error
        log = broker.log_text()
        assert log.count("disconnected, not authorised") == 1, log[-1500:]  # one attempt only
        assert "New client connected" not in log
        pub.stop()

        # the right password, from systemd's credentials directory, connects
        (tmp_path / "mqtt-password").write_text(good + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
        from edge.publish import read_secret

        ok = Publisher(
            _settings(
                broker,
                node_id="auth",
                username="edge",
                password=read_secret(None, "mqtt-password"),
                protocol=protocol,
            )
        )
        ok.start()
        assert ok.wait_connected(10)
        assert not ok.counters.auth_failed
        ok.stop()
    finally:
        broker.kill()
    captured = capfd.readouterr()
    for secret in (good, bad):
        assert secret not in caplog.text
        assert secret not in captured.err and secret not in captured.out
        assert all(secret not in r.getMessage() for r in caplog.records)
    assert "refused" in caplog.text  # the error itself is reported


def test_tls_verifies_the_broker(tmp_path: Path) -> None:
    pki = make_tls_files(tmp_path / "pki", "ca")
    other = make_tls_files(tmp_path / "other", "other")
    broker = Mosquitto.create(tmp_path / "tls", tls=pki).start()
    try:
        rec = MqttRecorder(broker.port, ["edge-pose/tls/#"], tls_ca=pki.ca_cert)
        good = Publisher(_settings(broker, node_id="tls", tls=True, ca_file=str(pki.ca_cert)))
        good.start()
        assert good.wait_connected(10), good.counters.last_error
        assert rec.wait_for(lambda _m: _live(rec, "edge-pose/tls/availability") == ["online"])
        good.stop()
        rec.close()

        wrong = Publisher(_settings(broker, node_id="tls2", tls=True, ca_file=str(other.ca_cert)))
        wrong.start()
        assert _wait(lambda: (wrong.counters.last_error or "").count("CERTIFICATE_VERIFY") > 0, 10)
        c = wrong.counters
        assert not c.connected and c.connects == 0 and not c.auth_failed
        wrong.stop()

        # verification off only when asked for explicitly
        insecure = Publisher(
            _settings(broker, node_id="tls3", tls=True, tls_insecure=True, ca_file=None)
        )
        insecure.start()
        assert insecure.wait_connected(10), insecure.counters.last_error
        insecure.stop()

        from edge.cli import main

        assert (
            main(["mqtt", "test-connection", "--url", broker.url, "--ca-file", str(pki.ca_cert)])
            == 0
        )
        assert (
            main(["mqtt", "test-connection", "--url", broker.url, "--ca-file", str(other.ca_cert)])
            == 3
        )
    finally:
        broker.kill()


def _discovery_configs(rec: MqttRecorder) -> dict[str, Received]:
    return {m.topic: m for m in rec.messages if m.topic.endswith("/config") and m.payload}


def test_discovery_retained_republished_and_hostile_payloads(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge")
    settings = _settings(broker, node_id="ha", discovery=True)
    pub = Publisher(settings)
    pub.start()
    assert pub.wait_connected(10)
    result = PoseResult(
        0, 640, 480, (Pose(0, 0.9, np.zeros((33, 5), np.float32), np.zeros((33, 3), np.float32)),)
    )
    pub.publish_result(result, 0, "cam")
    topics = config_topics(settings)
    # availability + configs + presence + count acknowledged by the broker
    assert _wait(lambda: pub.counters.messages_sent >= len(topics) + 3)
    # a late subscriber (Home Assistant starting) gets the retained configs
    ha = MqttRecorder(broker.port, ["homeassistant/#", "edge-pose/ha/#"])
    assert ha.wait_for(lambda _m: len(_discovery_configs(ha)) == len(topics), 10)
    configs = _discovery_configs(ha)
    assert sorted(configs) == sorted(topics)
    for topic, msg in configs.items():
        assert msg.retain
        config = json.loads(msg.payload)
        for key in REQUIRED_KEYS[topic.split("/")[1]]:
            assert key in config
        assert config["availability"][0]["topic"] == "edge-pose/ha/availability"
        assert config["state_topic"].startswith("edge-pose/ha/")
    assert ha.wait_for(lambda _m: len(ha.on("edge-pose/ha/presence")) >= 1)

    # hostile payloads on the topic we subscribe to: binary, huge, near-misses
    import paho.mqtt.publish as single

    hostile = [b"\xff\xfe\x00\x01", os.urandom(1 << 20), b"online" * 1000, b"", b"0nline", b"\x00"]
    for payload in hostile:
        single.single("homeassistant/status", payload, hostname=broker.host, port=broker.port)
    ha.clear()
    # Home Assistant restarts: discovery and state come again
    single.single("homeassistant/status", b"online", hostname=broker.host, port=broker.port)
    assert ha.wait_for(lambda _m: len(_discovery_configs(ha)) == len(topics), 10)
    assert ha.wait_for(lambda _m: _live(ha, "edge-pose/ha/presence") == ["ON"], 5)
    assert _live(ha, "edge-pose/ha/availability") == ["online"]
    assert pub.counters.connected  # still alive after the junk
    # only the valid announcement triggered a re-publish
    assert caplog.text.count("Home Assistant is online") == 1
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("edge")
    ]

    # remove the node: retained configs and state are cleared
    pub.stop()
    ha.close()
    from edge.cli import main

    assert main(["mqtt", "remove-node", "--url", broker.url, "--node", "ha"]) == 0
    assert "retained topics cleared" in capsys.readouterr().out
    after = MqttRecorder(broker.port, ["homeassistant/#", "edge-pose/ha/#"])
    time.sleep(0.5)
    assert [m for m in after.messages if m.payload] == []
    after.close()


def test_reload_with_new_base_topic_in_one_process(broker: Mosquitto) -> None:
    """SIGHUP path: stop one publisher, start another on a new base topic; no thread leaks."""
    rec = MqttRecorder(broker.port, ["old/base/#", "new/base/#"])
    before = threading.active_count()
    first = Publisher(_settings(broker, node_id="reload", base_topic="old/base"))
    first.start()
    assert first.wait_connected(10)
    first.stop()
    second = Publisher(_settings(broker, node_id="reload", base_topic="new/base"))
    second.start()
    assert second.wait_connected(10)
    second.publish_stats({"fps": 1.0})
    assert rec.wait_for(lambda _m: len(rec.on("new/base/stats")) == 1)
    second.stop()
    assert rec.wait_for(lambda _m: _live(rec, "new/base/availability") == ["online", "stopped"])
    assert _live(rec, "old/base/availability") == ["online", "stopped"]
    assert _wait(lambda: threading.active_count() <= before, 5)
    rec.close()


def test_mqtt5_msgpack_and_mask(broker: Mosquitto) -> None:
    from edge.publish.encoding import decode_record

    rec = MqttRecorder(broker.port, ["edge-pose/m5/#"], protocol="5")
    pub = Publisher(
        _settings(
            broker,
            node_id="m5",
            protocol="5",
            encoding="msgpack",
            mask_enabled=True,
            mask_rate_hz=2.0,
        )
    )
    pub.start()
    assert pub.wait_connected(10)
    mask = np.zeros((480, 640), np.float32)
    mask[100:400, 200:440] = 1.0
    pose = Pose(0, 0.9, np.full((33, 5), 0.5, np.float32), np.zeros((33, 3), np.float32))
    for i in range(25):  # 1 s at 25 fps
        pub.publish_result(PoseResult(i * 40_000_000, 640, 480, (pose,), segmentation=mask), i, "c")
        time.sleep(0.01)
    assert rec.wait_for(lambda _m: len(rec.on("edge-pose/m5/pose")) == 25)
    pub.stop()
    msgs = rec.on("edge-pose/m5/pose")
    records = [decode_record(m.payload, "msgpack") for m in msgs]
    assert [r["frame"] for r in records] == list(range(25))
    for r in records:
        VALIDATOR.validate(r)
    sent_ms = [dict(m.user_properties).get("sent_ms") for m in msgs]
    assert all(s is not None and float(s) > 1.6e12 for s in sent_ms)
    masks = rec.on("edge-pose/m5/mask")
    assert 1 <= len(masks) <= 2  # 2 Hz on frame time over 1 s of frames
    image = cv2.imdecode(np.frombuffer(masks[0].payload, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (48, 64) and image.max() == 255 and image[0, 0] == 0
    rec.close()
