"""The latest-frame buffer: exact drop counts, newest frame only, flat memory, recovery."""

from __future__ import annotations

import itertools
import random
import threading
import time
import tracemalloc
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import (
    BackoffPolicy,
    Frame,
    FrameSource,
    LatestFrameCapture,
    SourceError,
    SourceFault,
    SourceInfo,
    SourceOptions,
    backoff_delay_s,
    create_source,
)


def clip_frames(shared_data: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(shared_data / "video" / "dance.mp4"))
    out = []
    while len(out) < count:
        ok, bgr = cap.read()
        assert ok
        out.append(np.ascontiguousarray(bgr[..., ::-1]))
    cap.release()
    return out


class GatedSource:
    """Real frames, released one by one by the test; can fail reads and opens on demand."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images
        self.gate = threading.Semaphore(0)
        self.index = 0
        self.is_open = False
        self.opens = 0
        self.fail_next_read = False
        self.failing_opens = 0
        self.finished = False

    def finish(self) -> None:
        """End the stream: a read waiting at the gate returns None (so stop() is quick)."""
        self.finished = True

    def open(self) -> None:
        if self.is_open:
            return
        self.opens += 1
        if self.failing_opens > 0:
            self.failing_opens -= 1
            raise SourceFault("camera still unplugged")
        self.is_open = True

    def read(self) -> Frame | None:
        while not self.gate.acquire(timeout=0.02):
            if self.finished:
                return None
        if self.fail_next_read:
            self.fail_next_read = False
            raise SourceFault("stream dropped")
        if self.index >= len(self.images) * 10:
            return None
        rgb = self.images[self.index % len(self.images)]
        ts = self.index * 40_000_000
        frame = Frame(rgb=rgb, timestamp_ns=ts, index=self.index, source="gated")
        self.index += 1
        return frame

    def close(self) -> None:
        self.is_open = False

    def describe(self) -> SourceInfo:
        return SourceInfo(kind="test", uri="gated", width=514, height=496)


def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)
    assert predicate(), "condition not reached in time"  # type: ignore[operator]


def test_gated_source_satisfies_the_protocol(shared_data: Path) -> None:
    assert isinstance(GatedSource([]), FrameSource)
    assert isinstance(create_source(str(shared_data / "video" / "dance.mp4")), FrameSource)


def test_a_consumer_that_falls_behind_gets_the_newest_and_drops_are_exact(
    shared_data: Path,
) -> None:
    source = GatedSource(clip_frames(shared_data, 5))
    now_ns = [1_000_000_000]
    with LatestFrameCapture(source, clock_ns=lambda: now_ns[0]) as capture:
        assert capture.stats().frame_age_s is None
        for _ in range(10):
            source.gate.release()
        wait_for(lambda: capture.frames_captured == 10)
        now_ns[0] += 2_500_000_000
        assert capture.stats().frame_age_s == 2.5  # the capture's clock, injected
        first = capture.get(1.0)
        assert first is not None and first.index == 9  # the newest, not the oldest
        assert capture.frames_dropped == 9
        assert capture.get(0.05) is None  # never the same frame twice, never a stale one
        source.gate.release()
        second = capture.get(5.0)
        assert second is not None and second.index == 10
        for _ in range(3):
            source.gate.release()
        wait_for(lambda: capture.frames_captured == 14)
        source.finish()
    stats = capture.stats()
    assert (stats.frames_captured, stats.frames_consumed, stats.frames_dropped) == (14, 2, 12)
    assert stats.faults == 0 and stats.ended


def test_a_slow_consumer_keeps_memory_flat_and_counts_every_drop(shared_data: Path) -> None:
    """dance.mp4 decoded flat out (loop) against a consumer that takes 15 ms per frame."""
    live: list[weakref.ref[Frame]] = []
    inner = create_source(str(shared_data / "video" / "dance.mp4"), SourceOptions(loop=True))

    class Watched:
        def open(self) -> None:
            inner.open()

        def read(self) -> Frame | None:
            frame = inner.read()
            if frame is not None:
                live[:] = [r for r in live if r() is not None] + [weakref.ref(frame)]
            return frame

        def close(self) -> None:
            inner.close()

        def describe(self) -> SourceInfo:
            return inner.describe()

    tracemalloc.start()
    try:
        capture = LatestFrameCapture(Watched())
        capture.start()
        indices = []
        max_live = 0
        mem_after_warmup = 0
        for n in range(120):
            newest_before = capture.frames_captured - 1
            frame = capture.get(5.0)
            assert frame is not None
            assert frame.index >= newest_before  # nothing older than what existed at the call
            indices.append(frame.index)
            if n == 20:
                mem_after_warmup = tracemalloc.get_traced_memory()[0]
            time.sleep(0.015)
            max_live = max(max_live, sum(1 for r in live if r() is not None))
            del frame
        mem_end = tracemalloc.get_traced_memory()[0]
        capture.stop()
    finally:
        tracemalloc.stop()
    stats = capture.stats()
    frame_bytes = 496 * 514 * 3
    print(
        f"slow consumer: captured {stats.frames_captured}, consumed {stats.frames_consumed}, "
        f"dropped {stats.frames_dropped}, live frames <= {max_live}, "
        f"memory growth {(mem_end - mem_after_warmup) / 1e6:+.2f} MB"
    )
    assert all(b > a for a, b in itertools.pairwise(indices))
    assert stats.frames_captured == stats.frames_consumed + stats.frames_dropped
    assert stats.frames_consumed == 120 and stats.frames_dropped > 0
    assert max_live <= 3  # consumer's frame, the slot, and one being handed over
    assert mem_end - mem_after_warmup < 2 * frame_bytes


def test_end_of_file_ends_the_capture(shared_data: Path) -> None:
    capture = LatestFrameCapture(create_source(str(shared_data / "video" / "pose_squats.mp4")))
    capture.start()
    got = list(capture.frames(timeout_s=10.0))
    assert capture.ended and capture.error is None
    assert capture.get(0.01) is None
    capture.stop()
    stats = capture.stats()
    assert stats.frames_captured == 65
    assert len(got) == stats.frames_consumed
    assert stats.frames_consumed + stats.frames_dropped == 65
    assert got[-1].index == 64  # the last frame is never lost


def test_an_unreadable_file_fails_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    capture = LatestFrameCapture(create_source(str(bad)))
    with pytest.raises(SourceError, match=r"garbage\.mp4"):
        capture.start()


def test_a_fault_is_reported_retried_with_backoff_and_recovered(
    shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = GatedSource(clip_frames(shared_data, 3))
    policy = BackoffPolicy(initial_s=0.01, max_s=0.04)
    capture = LatestFrameCapture(source, backoff=policy, rng=random.Random(1))
    with caplog.at_level("INFO", logger="edge.capture.latest"), capture:
        source.gate.release()
        assert capture.get(5.0) is not None
        source.failing_opens = 3  # the device stays away for three reopen attempts
        source.fail_next_read = True
        source.gate.release()
        wait_for(lambda: capture.faults == 1)
        source.gate.release()
        frame = capture.get(10.0)
        assert frame is not None and frame.index == 1
        source.finish()
    stats = capture.stats()
    assert stats.faults == 1 and stats.recoveries == 1
    assert stats.reconnect_attempts == 4  # three refused, the fourth opened
    assert source.opens == 5  # start + four attempts
    assert stats.last_fault == "camera still unplugged"
    assert stats.last_outage_s is not None and stats.last_outage_s > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings[0] == "capture fault #1: stream dropped; reconnecting with backoff"
    assert warnings[1].startswith("capture recovered: ")


def test_a_source_down_at_start_is_retried_not_fatal(shared_data: Path) -> None:
    source = GatedSource(clip_frames(shared_data, 3))
    source.failing_opens = 2
    capture = LatestFrameCapture(source, backoff=BackoffPolicy(initial_s=0.01, max_s=0.02))
    with capture:
        source.gate.release()
        frame = capture.get(10.0)
        source.finish()
    assert frame is not None and frame.index == 0
    assert capture.stats().faults == 1 and capture.stats().recoveries == 1


def test_backoff_grows_exponentially_to_its_bound_with_jitter() -> None:
    policy = BackoffPolicy(initial_s=0.5, max_s=30.0, multiplier=2.0, jitter=0.2)
    mid = [backoff_delay_s(n, policy, 0.5) for n in range(9)]
    assert mid == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_delay_s(3, policy, 0.0) == pytest.approx(4.0 * 0.8)
    assert backoff_delay_s(3, policy, 0.999999) == pytest.approx(4.0 * 1.2, rel=1e-5)
    assert backoff_delay_s(10_000, policy, 0.5) == 30.0
    with pytest.raises(ValueError):
        BackoffPolicy(initial_s=5, max_s=1)
