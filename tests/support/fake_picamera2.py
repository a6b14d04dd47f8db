"""A minimal stand-in for the part of picamera2 (and libcamera's Transform) edge.capture uses.

This machine has no Pi camera. The stand-in plays the camera: it serves the test's
RGB frames through the buffer formats libcamera produces (planar YUV420 with an
optional row stride, RGB888 stored as B,G,R, BGR888 stored as R,G,B), stamps
``SensorTimestamp`` metadata, counts requests acquired and released, and can
pretend the camera is missing, busy or stalled. Everything around it is the real
code. Install it with ``install(monkeypatch, camera)``.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import pytest


class Transform:
    def __init__(self, hflip: bool = False, vflip: bool = False) -> None:
        self.hflip = bool(hflip)
        self.vflip = bool(vflip)


@dataclass
class FakeCamera:
    """The state of the pretend camera system, shared by every Picamera2 instance."""

    frames: list[np.ndarray]  # RGB images at the lores size, served in a loop
    cameras: list[dict[str, Any]] = field(
        default_factory=lambda: [{"Model": "imx708", "Location": 2, "Rotation": 180, "Num": 0}]
    )
    busy: bool = False
    stride: int | None = None  # YUV420 row stride when wider than the image
    t0_ns: int = 5_000_000_000
    stalled: threading.Event = field(default_factory=threading.Event)
    sequence: int = 0
    acquired: int = 0
    released: int = 0
    opened: int = 0
    closed: int = 0
    configs: list[dict[str, Any]] = field(default_factory=list)


class _Request:
    def __init__(self, owner: Picamera2, seq: int) -> None:
        self._owner = owner
        self._seq = seq

    def make_array(self, name: str) -> np.ndarray:
        cfg = self._owner.config[name]
        fmt = cfg["format"]
        cam = self._owner.camera
        rgb = cam.frames[self._seq % len(cam.frames)]
        if name == "main" and rgb.shape[1::-1] != tuple(cfg["size"]):
            rgb = cv2.resize(rgb, tuple(cfg["size"]))
        if fmt == "YUV420":
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
            h, w = rgb.shape[:2]
            stride = cam.stride or w
            if stride == w:
                return yuv
            out = np.zeros((h * 3 // 2, stride), np.uint8)  # padded rows, chroma at stride/2
            out[:h, :w] = yuv[:h]
            u = yuv[h : h + h // 4].reshape(h // 2, w // 2)
            v = yuv[h + h // 4 :].reshape(h // 2, w // 2)
            flat = out[h:].reshape(-1)
            half = stride // 2
            flat[: h // 2 * half].reshape(h // 2, half)[:, : w // 2] = u
            flat[h // 2 * half :].reshape(h // 2, half)[:, : w // 2] = v
            return out
        if fmt == "BGR888":  # libcamera's BGR888 is R, G, B in memory
            return rgb.copy()
        if fmt == "RGB888":  # ... and RGB888 is B, G, R
            return np.ascontiguousarray(rgb[..., ::-1])
        raise AssertionError(f"stand-in has no format {fmt}")

    def get_metadata(self) -> dict[str, Any]:
        limits = self._owner.config["controls"].get("FrameDurationLimits", (33_333, 33_333))
        return {"SensorTimestamp": self._owner.camera.t0_ns + self._seq * limits[0] * 1000}

    def release(self) -> None:
        self._owner.camera.released += 1


class Picamera2:
    camera: FakeCamera  # set by install()

    @classmethod
    def global_camera_info(cls) -> list[dict[str, Any]]:
        return [dict(c) for c in cls.camera.cameras]

    def __init__(self, camera_num: int = 0) -> None:
        if self.camera.busy:
            try:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            except RuntimeError as e:
                raise RuntimeError("Camera __init__ sequence did not complete.") from e
        self.camera_num = camera_num
        self.config: dict[str, Any] = {}
        self.started = False
        self.camera.opened += 1

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        return dict(kwargs)

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config
        self.camera.configs.append(config)

    def start(self) -> None:
        self.started = True

    def capture_request(self, wait: bool | None = None) -> Any:
        assert self.started, "capture_request before start"
        job = ("job", self)
        return job if wait is False else self.wait(job)

    def wait(self, job: Any, timeout: float | None = None) -> _Request:
        if self.camera.stalled.is_set():
            time.sleep(timeout or 0.0)
            raise TimeoutError("no request completed")
        cam = self.camera
        seq = cam.sequence
        cam.sequence += 1
        cam.acquired += 1
        return _Request(self, seq)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.camera.closed += 1


def install(monkeypatch: pytest.MonkeyPatch, camera: FakeCamera) -> None:
    """Make ``import picamera2`` and ``import libcamera`` return the stand-in."""
    cls = type("Picamera2", (Picamera2,), {"camera": camera})
    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = cls  # type: ignore[attr-defined]
    libcamera = types.ModuleType("libcamera")
    libcamera.Transform = Transform  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
