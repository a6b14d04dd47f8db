"""The picamera2 adapter against a stand-in camera (tests/support/fake_picamera2.py).

The stand-in serves real image content through libcamera's buffer formats; the
conversion to RGB, the timestamps, request release, error messages and the
latest-frame capture with fault recovery are the real code.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import (
    BackoffPolicy,
    CameraBusyError,
    CameraNotFoundError,
    LatestFrameCapture,
    SourceError,
    SourceOptions,
    create_source,
)
from edge.capture.picamera2_source import Picamera2Source
from tests.support.fake_picamera2 import FakeCamera, install


def scene(shared_data: Path, width: int, height: int, count: int = 3) -> list[np.ndarray]:
    """`count` different RGB frames of a real photo at the lores size."""
    bgr = cv2.imread(str(shared_data / "images" / "yoga-beach.jpg"))
    small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return [np.ascontiguousarray(np.roll(rgb, 48 * k, axis=1)) for k in range(count)]


@pytest.fixture
def camera(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCamera:
    cam = FakeCamera(frames=scene(shared_data, 640, 480))
    install(monkeypatch, cam)
    return cam


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def test_yuv420_lores_frames_carry_the_scene_and_sensor_timestamps(camera: FakeCamera) -> None:
    source = create_source("picamera2", SourceOptions(width=640, height=480, fps=30, hflip=True))
    assert isinstance(source, Picamera2Source)
    source.open()
    try:
        frames = [source.read() for _ in range(6)]
    finally:
        source.close()
    config = camera.configs[0]
    assert config["lores"] == {"size": (640, 480), "format": "YUV420"}
    assert config["controls"]["FrameDurationLimits"] == (33_333, 33_333)
    assert (config["transform"].hflip, config["transform"].vflip) == (True, False)
    for k, frame in enumerate(frames):
        assert frame is not None
        assert frame.rgb.shape == (480, 640, 3) and frame.rgb.flags.c_contiguous
        assert frame.index == k and frame.source == "picamera2"
        assert frame.timestamp_ns == camera.t0_ns + k * 33_333_000  # SensorTimestamp, untouched
        # YUV420 keeps luma and halves chroma: a real photo survives within a few levels
        own = mean_abs_diff(frame.rgb, camera.frames[k % 3])
        assert own < 3.0
        assert mean_abs_diff(frame.rgb, camera.frames[(k + 1) % 3]) > 4 * own
    assert camera.acquired == camera.released == 6, "every request is released at once"
    assert camera.closed == 1


def test_padded_yuv420_rows_are_cut_to_the_image_width(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = FakeCamera(frames=scene(shared_data, 600, 400), stride=640)
    install(monkeypatch, cam)
    source = create_source("picamera2", SourceOptions(width=600, height=400))
    source.open()
    frame = source.read()
    source.close()
    assert frame is not None and frame.rgb.shape == (400, 600, 3)
    assert mean_abs_diff(frame.rgb, cam.frames[0]) < 3.0


@pytest.mark.parametrize("fmt", ["RGB888", "BGR888"])
def test_rgb_lores_formats_convert_exactly(camera: FakeCamera, fmt: str) -> None:
    source = create_source("picamera2", SourceOptions(width=640, height=480, pixel_format=fmt))
    source.open()
    frame = source.read()
    source.close()
    assert frame is not None
    np.testing.assert_array_equal(frame.rgb, camera.frames[0])


def test_rotation_180_goes_to_the_isp_and_90_is_done_in_software(camera: FakeCamera) -> None:
    source = create_source("picamera2", SourceOptions(width=640, height=480, rotation=180))
    source.open()
    source.close()
    t = camera.configs[-1]["transform"]
    assert (t.hflip, t.vflip) == (True, True)

    opts = SourceOptions(width=640, height=480, rotation=90, pixel_format="BGR888")
    source = create_source("picamera2", opts)
    source.open()
    frame = source.read()
    info = source.describe()
    source.close()
    assert frame is not None and frame.rgb.shape == (640, 480, 3)
    assert (info.width, info.height) == (480, 640)
    np.testing.assert_array_equal(frame.rgb, np.rot90(camera.frames[0], k=-1))


def test_snapshot_reads_the_main_stream(camera: FakeCamera) -> None:
    opts = SourceOptions(width=640, height=480, main_size=(1280, 960))
    source = Picamera2Source("picamera2", opts)
    source.open()
    image = source.snapshot()
    source.close()
    assert camera.configs[0]["main"] == {"size": (1280, 960), "format": "RGB888"}
    assert image.shape == (960, 1280, 3)
    small = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
    assert mean_abs_diff(small, camera.frames[0]) < 3.0
    assert camera.acquired == camera.released


def test_no_camera_and_missing_camera_number_say_so(camera: FakeCamera) -> None:
    camera.cameras = []
    with pytest.raises(CameraNotFoundError, match="no camera detected"):
        create_source("picamera2", SourceOptions()).open()
    camera.cameras = [{"Model": "imx219", "Num": 0}]
    with pytest.raises(CameraNotFoundError, match="camera 1 not found: libcamera sees 1"):
        create_source("picamera2:1", SourceOptions()).open()


def test_camera_in_use_says_so(camera: FakeCamera) -> None:
    camera.busy = True
    with pytest.raises(CameraBusyError, match="in use by another process") as info:
        create_source("picamera2", SourceOptions()).open()
    assert "pipeline handler in use" in str(info.value)
    assert "imx708" in str(info.value)


def test_without_picamera2_the_error_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "picamera2", None)
    source = create_source("picamera2", SourceOptions())  # constructing imports nothing
    with pytest.raises(SourceError, match="python3-picamera2"):
        source.open()


def test_a_stalled_camera_is_reported_reopened_and_resumes(camera: FakeCamera) -> None:
    opts = SourceOptions(width=640, height=480, stall_timeout_s=0.2)
    capture = LatestFrameCapture(
        create_source("picamera2", opts), backoff=BackoffPolicy(initial_s=0.05, max_s=0.2)
    )
    with capture:
        before = [capture.get(5.0) for _ in range(3)]
        camera.stalled.set()
        deadline = time.monotonic() + 10
        while capture.faults == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert capture.faults == 1
        assert capture.last_fault is not None and "no frame for 0.2 s" in capture.last_fault
        captured_at_fault = capture.frames_captured
        camera.stalled.clear()
        after = capture.get(5.0)
        while after is not None and after.index < captured_at_fault:
            after = capture.get(5.0)
    stats = capture.stats()
    assert after is not None and all(b is not None for b in before)
    assert after.timestamp_ns > max(b.timestamp_ns for b in before if b is not None)
    assert stats.faults == 1 and stats.recoveries == 1 and stats.reconnect_attempts >= 1
    assert camera.opened == 2 and camera.closed == 2  # the stalled camera was closed, reopened
    assert camera.acquired == camera.released
    assert stats.frames_captured == stats.frames_consumed + stats.frames_dropped


def test_exposure_controls_turn_auto_exposure_off(camera: FakeCamera) -> None:
    opts = SourceOptions(width=320, height=240, fps=15, exposure_time_us=10_000, analogue_gain=2.0)
    source = create_source("picamera2:0", opts)
    source.open()
    info = source.describe()
    source.close()
    controls = camera.configs[0]["controls"]
    assert controls == {
        "FrameDurationLimits": (66_667, 66_667),
        "AeEnable": False,
        "ExposureTime": 10_000,
        "AnalogueGain": 2.0,
    }
    assert camera.configs[0]["main"] == {"size": (320, 240), "format": "YUV420"}
    assert (info.kind, info.width, info.height, info.fps) == ("picamera2", 320, 240, 15)
    assert "imx708" in info.backend
