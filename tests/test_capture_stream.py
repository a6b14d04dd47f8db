"""Fault handling against a real MJPEG-over-HTTP stream served on loopback.

The server (tests/support/mjpeg_server.py) streams JPEG frames of dance.mp4 the way
an IP camera does. Mid-test it goes away (connections dropped, port closed) and
comes back, and it stalls (connection open, nothing sent): the source reports each
fault, retries with backoff and resumes, all through OpenCV's FFmpeg backend.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.capture import LatestFrameCapture, SourceOptions, create_source
from tests.support.mjpeg_server import MjpegServer, jpeg_frames_from_clip


@pytest.fixture(scope="module")
def jpegs(shared_data: Path) -> list[bytes]:
    return jpeg_frames_from_clip(shared_data / "video" / "dance.mp4", 50)


@pytest.fixture
def server(jpegs: list[bytes]) -> Iterator[MjpegServer]:
    srv = MjpegServer(jpegs, fps=25)
    srv.start()
    yield srv
    srv.stop()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert predicate(), "condition not reached in time"


def test_stream_frames_have_the_served_size(server: MjpegServer) -> None:
    source = create_source(server.url, SourceOptions(stall_timeout_s=2.0, open_timeout_s=5.0))
    source.open()
    try:
        frames = [source.read() for _ in range(5)]
        info = source.describe()
    finally:
        source.close()
    assert info.kind == "stream" and info.backend == "opencv FFMPEG"
    for frame in frames:
        assert frame is not None
        assert frame.rgb.shape == (309, 320, 3) and frame.source == server.url
    ts = [f.timestamp_ns for f in frames if f is not None]
    assert all(b > a for a, b in itertools.pairwise(ts))


def test_a_stream_that_drops_and_stalls_is_reported_retried_and_resumed(
    server: MjpegServer,
) -> None:
    options = SourceOptions(
        stall_timeout_s=1.0, open_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.4
    )
    capture = LatestFrameCapture(create_source(server.url, options), backoff=options.backoff)
    with capture:
        for _ in range(10):
            assert capture.get(10.0) is not None

        # 1. the camera goes away: connections reset, port closed
        server.stop()
        wait_for(lambda: capture.faults == 1)
        assert "stopped delivering" in (capture.last_fault or "")
        wait_for(lambda: capture.stats().reconnect_attempts >= 3)  # refused, backing off
        assert capture.stats().faulted
        assert "cannot open stream" in (capture.last_fault or "")
        down_at = capture.frames_captured
        server.start()  # same port, as a rebooted camera
        wait_for(lambda: capture.frames_captured > down_at + 5)
        first = capture.stats()
        assert first.recoveries == 1 and not first.faulted
        assert first.last_outage_s is not None and first.last_recovery_s is not None
        assert first.last_outage_s >= first.last_recovery_s

        # 2. the camera stalls: the connection stays open, nothing arrives
        server.paused.set()
        wait_for(lambda: capture.faults == 2)
        assert "no frame for 1 s" in (capture.last_fault or "")
        stalled_at = capture.frames_captured
        server.paused.clear()
        wait_for(lambda: capture.frames_captured > stalled_at + 5)
        frame = capture.get(10.0)
        assert frame is not None and frame.rgb.shape == (309, 320, 3)
    stats = capture.stats()
    print(
        f"stream faults: {stats.faults}, reconnect attempts {stats.reconnect_attempts}, "
        f"recoveries {stats.recoveries}; server down: {first.last_outage_s:.2f} s without "
        f"frames, back {first.last_recovery_s:.2f} s after the fault was detected; stall: "
        f"{stats.last_outage_s:.2f} s without frames, back {stats.last_recovery_s:.2f} s after"
    )
    assert stats.faults == 2 and stats.recoveries == 2
    assert stats.last_outage_s is not None and stats.last_outage_s >= 1.0  # the stall timeout
    assert stats.frames_captured == stats.frames_consumed + stats.frames_dropped
