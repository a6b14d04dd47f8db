"""Bad frames straight into the real pose pipeline, and through the real daemon loop.

Each bad frame is either handled (a result with no pose) or rejected with a
``ValueError`` that says what was wrong; in the daemon a rejected frame is one
log line and one count in ``frame_errors``, and the loop goes on publishing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.app import AppFactory
from edge.config import EdgeConfig, LoadedConfig, load_config
from edge.daemon import Daemon
from edge.pose import PoseOptions, PosePipeline
from edge.pose import build_pipeline as build_pose_pipeline
from tests.support.faults import model_precision, write_config
from tests.support.mosquitto import Mosquitto, MqttRecorder


@pytest.fixture(scope="module")
def dance_frames(shared_data: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(shared_data / "video" / "dance.mp4"))
    frames: list[np.ndarray] = []
    while len(frames) < 12:
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.fixture(scope="module")
def pipeline() -> PosePipeline:
    return build_pose_pipeline(PoseOptions(precision=model_precision(), num_threads=1))  # type: ignore[arg-type]


REJECTED: dict[str, tuple[Any, str]] = {
    "float32 frame": (np.zeros((96, 128, 3), np.float32), "HxWx3 uint8"),
    "int64 frame": (np.zeros((96, 128, 3), np.int64), "HxWx3 uint8"),
    "grey (2-D) frame": (np.zeros((96, 128), np.uint8), "HxWx3 uint8"),
    "RGBA frame": (np.zeros((96, 128, 4), np.uint8), "HxWx3 uint8"),
    "batch of frames (4-D)": (np.zeros((1, 96, 128, 3), np.uint8), "HxWx3 uint8"),
    "1x1 frame": (np.zeros((1, 1, 3), np.uint8), "too small"),
    "0x0 frame": (np.zeros((0, 0, 3), np.uint8), "too small"),
    "None instead of a frame": (None, "numpy array"),
    "nested list": ([[[0, 0, 0]]], "numpy array"),
}

HANDLED: dict[str, np.ndarray] = {
    "all-black 640x480": np.zeros((480, 640, 3), np.uint8),
    "all-white 640x480": np.full((480, 640, 3), 255, np.uint8),
    "2x2 frame": np.zeros((2, 2, 3), np.uint8),
    "2x4000 sliver": np.full((2, 4000, 3), 77, np.uint8),
    "huge 8000x6000": np.full((6000, 8000, 3), 128, np.uint8),
    "non-contiguous view": np.zeros((480, 640, 3), np.uint8)[::2, ::-1],
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_bad_frame_is_rejected_with_a_clear_error(pipeline: PosePipeline, name: str) -> None:
    image, fragment = REJECTED[name]
    with pytest.raises(ValueError, match=fragment):
        pipeline.process(image, 1_000)


def test_odd_frames_are_handled_and_tracking_recovers(
    pipeline: PosePipeline, dance_frames: list[np.ndarray]
) -> None:
    ts = 0
    for name, image in HANDLED.items():
        ts += 33_000_000
        result = pipeline.process(image, ts)
        assert result.poses == (), name  # nobody in an empty, blank or degenerate frame
        assert (result.width, result.height) == (image.shape[1], image.shape[0]), name
    # ... and the next real frames (timestamps jumping back too) still give the dancer.
    for i, frame in enumerate(dance_frames[:4]):
        result = pipeline.process(frame, 1_000 + i * 33_000_000)
    assert len(result.poses) == 1
    assert len(result.poses[0].landmarks) == 33


# --- the daemon loop survives them -----------------------------------------------------------


@dataclass(frozen=True)
class RawFrame:
    """A frame as the daemon loop sees it, without :class:`edge.capture.types.Frame`'s checks
    (so that what no real source can produce still reaches the loop)."""

    rgb: Any
    timestamp_ns: int
    index: int
    source: str = "fault-injector"

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1]) if hasattr(self.rgb, "shape") and self.rgb.ndim > 1 else 0

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0]) if hasattr(self.rgb, "shape") and self.rgb.ndim > 0 else 0


class ScriptedCapture:
    """Hands the daemon a fixed list of frames, then reports the end of the source."""

    def __init__(self, frames: list[RawFrame]) -> None:
        self._frames = list(frames)
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def get(self, timeout_s: float | None = None) -> Any:
        with self._lock:
            return self._frames.pop(0) if self._frames else None

    def stop(self, timeout_s: float = 10.0) -> None:
        pass

    @property
    def ended(self) -> bool:
        with self._lock:
            return not self._frames

    frames_dropped = 0
    faults = 0
    error = None


class InjectingFactory(AppFactory):
    def __init__(self, frames: list[RawFrame]) -> None:
        self.frames = frames

    def capture(self, config: EdgeConfig) -> Any:
        return ScriptedCapture(self.frames)


@pytest.fixture
def recorder(mosquitto: Mosquitto) -> Iterator[MqttRecorder]:
    rec = MqttRecorder(mosquitto.port, ["hostile-frames/#"])
    yield rec
    rec.close()


def test_daemon_loop_logs_each_bad_frame_once_and_keeps_publishing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    recorder: MqttRecorder,
    dance_frames: list[np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(
        tmp_path / "config.toml",
        {
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {
                "url": mosquitto.url,
                "node_id": "frames",
                "base_topic": "hostile-frames",
                "qos": 1,
                "discovery": False,
            },
        },
    )
    loaded: LoadedConfig = load_config(config, env={})
    images: list[Any] = [*dance_frames[:4]]
    images += [REJECTED[k][0] for k in ("float32 frame", "grey (2-D) frame", "RGBA frame")]
    images += [REJECTED["1x1 frame"][0], HANDLED["huge 8000x6000"], HANDLED["all-black 640x480"]]
    images += [HANDLED["all-white 640x480"], *dance_frames[4:12]]
    frames = [RawFrame(img, (i + 1) * 33_000_000, i) for i, img in enumerate(images)]
    daemon = Daemon(loaded, InjectingFactory(frames), reload=lambda: loaded, env={})
    caplog.set_level(logging.INFO, logger="edge")
    assert daemon.run() == 0  # the source ended: a clean stop, not a crash
    stats = daemon.stats(0)
    assert stats["frame_errors"] == 4
    assert stats["frames_processed"] == len(frames) - 4
    failed = [r.getMessage() for r in caplog.records if "failed (error #" in r.getMessage()]
    assert len(failed) == 4
    assert all("ValueError: image_rgb" in line and "fault-injector" in line for line in failed)
    assert "frame 7 from fault-injector (1x1, " in failed[3]
    # Poses were published before and after the bad frames (QoS 1: every one arrives).
    assert recorder.wait_for(lambda m: len(recorder.on("hostile-frames/frames/pose")) >= 13, 20)
    poses = recorder.on("hostile-frames/frames/pose")
    # 4 dance frames, the empty message when she "leaves" (bad frames have no pose),
    # then 8 more dance frames.
    assert [len(json.loads(m.payload)["poses"]) for m in poses] == [1] * 4 + [0] + [1] * 8
    assert len(poses) == 13
