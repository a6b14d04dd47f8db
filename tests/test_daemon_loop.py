"""The run loop in-process, with the real capture, pipeline, embedded broker and publisher:
per-frame errors are logged with context and the loop goes on; a bad reload keeps the
running config; a source change restarts only the capture. Plus journald log levels."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from edge.app import AppFactory
from edge.config import ConfigError, EdgeConfig, LoadedConfig, load_config
from edge.daemon import Daemon, Pipeline
from edge.pose.types import PoseResult
from edge.sdnotify import Notifier
from tests.support.faults import EDGE_POSE, daemon_env, model_precision
from tests.support.mosquitto import free_port


class FailingEveryThird:
    """The real pipeline, except every third frame raises (as a corrupt frame might)."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self.calls = 0

    def process(self, rgb: NDArray[np.uint8], timestamp_ns: int) -> PoseResult:
        self.calls += 1
        if self.calls % 3 == 0:
            raise ValueError(f"injected failure on call {self.calls}")
        return self.inner.process(rgb, timestamp_ns)


class Factory(AppFactory):
    def __init__(self) -> None:
        self.pipelines: list[FailingEveryThird] = []
        self.captures = 0

    def pipeline(self, config: EdgeConfig) -> FailingEveryThird:
        wrapped = FailingEveryThird(super().pipeline(config))
        self.pipelines.append(wrapped)
        return wrapped

    def capture(self, config: EdgeConfig) -> Any:
        self.captures += 1
        return super().capture(config)


def _loaded(uri: str, port: int, **extra: str) -> LoadedConfig:
    env = {
        "EDGE_POSE_SOURCE__URI": uri,
        "EDGE_POSE_SOURCE__LOOP": "true",
        "EDGE_POSE_MODELS__PRECISION": model_precision(),
        "EDGE_POSE_MODELS__THREADS": "1",
        "EDGE_POSE_MQTT__EMBEDDED_PORT": str(port),
        "EDGE_POSE_STATS__INTERVAL_S": "1",
        **extra,
    }
    return load_config(None, env=env)


@pytest.mark.slow
def test_frame_errors_are_logged_with_context_and_the_loop_goes_on(
    tmp_path: Path, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = str(shared_data / "video" / "pose_squats.mp4")
    other = str(shared_data / "video" / "dance.mp4")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video", encoding="utf-8")
    port = free_port()
    reloads: list[LoadedConfig | Exception] = [
        ConfigError("invalid configuration: stats.interval_s = 0: injected"),
        _loaded(str(tmp_path / "missing.mp4"), port),
        _loaded(str(not_a_video), port),
        _loaded(other, port),
        _loaded(other, port, EDGE_POSE_PIPELINE__MIN_TRACKING_CONFIDENCE="0.6"),
    ]

    def reload() -> LoadedConfig:
        nxt = reloads.pop(0)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    factory = Factory()
    daemon = Daemon(_loaded(clip, port), factory, reload=reload, notifier=Notifier(None), env={})
    done = threading.Event()
    result: list[int] = []

    def run() -> None:
        result.append(daemon.run())
        done.set()

    caplog.set_level(logging.INFO)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def processed() -> int:
        return int(daemon.stats(0)["frames_processed"])

    def wait_until(predicate: Any, timeout_s: float = 60.0) -> bool:
        event = threading.Event()
        for _ in range(int(timeout_s * 10)):
            if predicate():
                return True
            event.wait(0.1)
        return False

    assert wait_until(lambda: processed() >= 6)
    # An invalid config, a source that does not exist, one that cannot be opened:
    # each time the daemon keeps running on the old source.
    for left in (4, 3, 2):
        daemon.request_reload()
        assert wait_until(lambda left=left: len(reloads) == left)  # type: ignore[misc]
        before = processed()
        assert wait_until(lambda before=before: processed() >= before + 3)  # type: ignore[misc]
    daemon.request_reload()  # a good new source: only the capture restarts
    assert wait_until(lambda: len(reloads) == 1)
    before = processed()
    assert wait_until(lambda: processed() >= before + 3)
    assert len(factory.pipelines) == 1, "a source change must not rebuild the pipeline"
    captures = factory.captures
    daemon.request_reload()  # a pipeline option: only the pipeline is rebuilt
    assert wait_until(lambda: len(factory.pipelines) == 2)
    before = processed()
    assert wait_until(lambda: processed() >= before + 3)
    assert factory.captures == captures
    daemon.request_stop()
    assert done.wait(60)
    thread.join(10)

    assert result == [0]
    stats = daemon.stats(0)
    calls = [p.calls for p in factory.pipelines]
    assert factory.pipelines[1].inner.options.min_tracking_confidence == 0.6
    assert stats["frame_errors"] == sum(c // 3 for c in calls)
    assert stats["frames_processed"] == sum(c - c // 3 for c in calls)
    assert stats["reloads"] == 4  # the invalid config is not counted
    errors = [r.getMessage() for r in caplog.records if "injected failure" in r.getMessage()]
    assert errors, "frame errors must be logged"
    assert "frame " in errors[0]
    assert "pose_squats.mp4" in errors[0]
    assert "(720x1280" in errors[0] or "(1280x720" in errors[0]
    assert any("keeping the running config" in r.getMessage() for r in caplog.records)
    assert any("reload: source restarted" in r.getMessage() for r in caplog.records)
    messages = [r.getMessage() for r in caplog.records]
    assert any("missing.mp4" in m and "still running the old" in m for m in messages)
    assert any("notes.mp4" in m and "back to the old one" in m for m in messages)


def test_journald_priorities_when_stderr_is_the_journal(tmp_path: Path) -> None:
    """With $JOURNAL_STREAM naming stderr, lines carry <N> syslog priorities."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[models]\nthreads = 0\n", encoding="utf-8")
    read_fd, write_fd = os.pipe()
    st = os.fstat(write_fd)
    proc = subprocess.Popen(
        [*EDGE_POSE, "run", "--config", str(bad)],
        env=daemon_env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
        stderr=write_fd,
        stdout=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "r") as reader:
        text = reader.read()
    assert proc.wait(timeout=60) == 78
    lines = text.splitlines()
    assert lines, "nothing logged"
    assert lines[0].startswith("<3>edge.run: invalid configuration")
    assert all(line.startswith("<") for line in lines)
    assert any("models.threads = 0" in line for line in lines)
    plain = subprocess.run(
        [*EDGE_POSE, "run", "--config", str(bad)],
        env=daemon_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode == 78
    assert " ERROR edge.run: invalid configuration" in plain.stderr
    assert not plain.stderr.startswith("<")
