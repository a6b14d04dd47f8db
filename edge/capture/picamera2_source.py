"""The Raspberry Pi camera through picamera2 (libcamera): the default source on a Pi.

picamera2 is imported only inside this module's functions, so ``import edge``
works anywhere. On Raspberry Pi OS it comes from apt (``python3-picamera2``) and
the venv must be created with ``--system-site-packages`` to see it.

The camera runs a video configuration with a small ``lores`` stream at the
pipeline's working size (YUV420 on every Pi, converted to RGB with OpenCV; RGB888
or BGR888 where the ISP allows it, as on a Pi 5) and, optionally, a ``main``
stream for full-size snapshots. Each frame comes from ``capture_request``; the
request is released as soon as the lores array is copied out, so the camera never
runs short of buffers. Rotation by 180 degrees and flips are done by the ISP
through libcamera's ``Transform``; 90 and 270 degrees in software.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.capture.convert import orient, yuv420_to_rgb
from edge.capture.options import SourceOptions
from edge.capture.types import (
    CameraBusyError,
    CameraNotFoundError,
    Frame,
    RgbImage,
    SourceError,
    SourceFault,
    SourceInfo,
)

log = logging.getLogger(__name__)

#: Working size of the lores stream when the options give none.
DEFAULT_SIZE = (640, 480)

_FIX_HINT = (
    "check the ribbon cable and that `rpicam-hello --list-cameras` sees it "
    "(camera_auto_detect=1 or the sensor's dtoverlay in /boot/firmware/config.txt)"
)
_BUSY_MARKERS = ("busy", "in use", "did not complete")
_SUPPORTED_FORMATS = ("YUV420", "RGB888", "BGR888", "XRGB8888", "XBGR8888")


def camera_num_from_uri(uri: str) -> int:
    """``"picamera2"`` is camera 0, ``"picamera2:1"`` camera 1."""
    _, _, num = uri.partition(":")
    if not num:
        return 0
    if not num.isdigit():
        raise SourceError(f"bad picamera2 source {uri!r}: expected picamera2 or picamera2:N")
    return int(num)


def list_libcamera_cameras() -> list[dict[str, Any]]:
    """picamera2's ``global_camera_info()``; raises ImportError without picamera2."""
    from picamera2 import Picamera2

    return [dict(c) for c in Picamera2.global_camera_info()]


def lores_to_rgb(array: np.ndarray, fmt: str, width: int, height: int) -> RgbImage:
    """Convert a ``make_array("lores")`` result to a C-contiguous RGB image.

    picamera2 names formats by the 32-bit word: "RGB888" is stored B, G, R per
    pixel and "BGR888" R, G, B (so BGR888 already is RGB in memory).
    """
    if fmt in ("YUV420",):
        return yuv420_to_rgb(array, width, height)
    if fmt == "BGR888":
        return np.ascontiguousarray(array[:height, :width, :3])
    if fmt in ("RGB888", "XRGB8888"):
        return np.ascontiguousarray(array[:height, :width, 2::-1])
    if fmt == "XBGR8888":
        return np.ascontiguousarray(array[:height, :width, :3])
    raise SourceError(f"picamera2 format {fmt} not supported; use one of {_SUPPORTED_FORMATS}")


class Picamera2Source:
    """A Raspberry Pi camera (``picamera2`` or ``picamera2:N``) as a `FrameSource`."""

    def __init__(
        self,
        uri: str,
        options: SourceOptions,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if options.pixel_format not in _SUPPORTED_FORMATS:
            raise SourceError(
                f"picamera2 pixel_format {options.pixel_format!r} not supported; "
                f"use one of {_SUPPORTED_FORMATS}"
            )
        self.uri = uri
        self.options = options
        self.camera_num = camera_num_from_uri(uri)
        self._clock_ns = clock_ns
        self._size = (
            (options.width, options.height)
            if options.width is not None and options.height is not None
            else DEFAULT_SIZE
        )
        self._cam: Any = None
        self._model = ""
        self._index = 0
        self._last_ts = -1

    # -- FrameSource ------------------------------------------------------------

    def open(self) -> None:
        if self._cam is not None:
            return
        try:
            from libcamera import Transform
            from picamera2 import Picamera2
        except ImportError as e:
            raise SourceError(
                "picamera2 is not importable: on Raspberry Pi OS run "
                "`sudo apt install python3-picamera2` and create the venv with "
                f"--system-site-packages ({e})"
            ) from e
        cameras = Picamera2.global_camera_info()
        if not cameras:
            raise CameraNotFoundError(f"no camera detected by libcamera: {_FIX_HINT}")
        if self.camera_num >= len(cameras):
            raise CameraNotFoundError(
                f"camera {self.camera_num} not found: libcamera sees {len(cameras)} "
                f"camera(s), numbered from 0"
            )
        self._model = str(cameras[self.camera_num].get("Model", ""))
        try:
            cam = Picamera2(self.camera_num)
        except Exception as e:
            if _looks_busy(e):
                raise CameraBusyError(
                    f"camera {self.camera_num} ({self._model}) is in use by another process "
                    "(libcamera: pipeline handler in use / device or resource busy); stop the "
                    f"other program (another edge-pose, rpicam-*, a browser) and try again ({e})"
                ) from e
            raise SourceFault(f"camera {self.camera_num} failed to open: {e}") from e
        try:
            cam.configure(self._configuration(cam, Transform))
            cam.start()
        except Exception as e:
            cam.close()
            raise SourceFault(f"camera {self.camera_num} failed to start: {e}") from e
        self._cam = cam
        log.info(
            "opened picamera2 camera %d (%s), lores %dx%d %s",
            self.camera_num,
            self._model,
            self._size[0],
            self._size[1],
            self.options.pixel_format,
        )

    def read(self) -> Frame | None:
        cam = self._cam
        if cam is None:
            raise SourceError(f"{self.uri}: read() before open()")
        w, h = self._size
        try:
            job = cam.capture_request(wait=False)
            request = cam.wait(job, timeout=self.options.stall_timeout_s)
        except TimeoutError as e:
            raise SourceFault(
                f"camera {self.camera_num} delivered no frame for "
                f"{self.options.stall_timeout_s:g} s"
            ) from e
        except Exception as e:
            raise SourceFault(f"camera {self.camera_num} capture failed: {e}") from e
        try:
            array = request.make_array("lores")
            metadata = request.get_metadata()
        finally:
            request.release()  # hand the buffers back to libcamera at once
        rgb = lores_to_rgb(array, self.options.pixel_format, w, h)
        if self.options.rotation in (90, 270):
            rgb = orient(rgb, self.options.rotation)
        ts = metadata.get("SensorTimestamp")
        timestamp_ns = int(ts) if isinstance(ts, int) and ts > 0 else self._clock_ns()
        if timestamp_ns <= self._last_ts:
            timestamp_ns = self._last_ts + 1
        self._last_ts = timestamp_ns
        frame = Frame(rgb=rgb, timestamp_ns=timestamp_ns, index=self._index, source=self.uri)
        self._index += 1
        return frame

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        try:
            cam.stop()
        finally:
            cam.close()

    def describe(self) -> SourceInfo:
        w, h = self._size
        if self.options.rotation in (90, 270):
            w, h = h, w
        return SourceInfo(
            kind="picamera2",
            uri=self.uri,
            width=w,
            height=h,
            fps=self.options.fps,
            backend=f"picamera2 {self._model} lores {self.options.pixel_format}".replace("  ", " "),
        )

    def snapshot(self) -> RgbImage:
        """A full-size RGB image from the ``main`` stream (needs ``main_size``)."""
        if self._cam is None or self.options.main_size is None:
            raise SourceError("snapshot needs an open picamera2 source with main_size set")
        request = self._cam.capture_request()
        try:
            array = request.make_array("main")
        finally:
            request.release()
        mw, mh = self.options.main_size
        return lores_to_rgb(array, "RGB888", mw, mh)

    # -- internals --------------------------------------------------------------

    def _configuration(self, cam: Any, transform_cls: Any) -> Any:
        o = self.options
        w, h = self._size
        if o.main_size is not None:
            main = {"size": tuple(o.main_size), "format": "RGB888"}
        else:  # the ISP needs a main stream at least as large as lores
            main = {"size": (w, h), "format": "YUV420"}
        controls: dict[str, Any] = {}
        if o.fps is not None:
            frame_us = round(1e6 / o.fps)
            controls["FrameDurationLimits"] = (frame_us, frame_us)
        if o.exposure_time_us is not None:
            controls["AeEnable"] = False
            controls["ExposureTime"] = int(o.exposure_time_us)
        if o.analogue_gain is not None:
            controls["AnalogueGain"] = float(o.analogue_gain)
        flip180 = o.rotation == 180
        transform = transform_cls(hflip=o.hflip ^ flip180, vflip=o.vflip ^ flip180)
        return cam.create_video_configuration(
            main=main,
            lores={"size": (w, h), "format": o.pixel_format},
            controls=controls,
            transform=transform,
            buffer_count=4,
            queue=False,
        )


def _looks_busy(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the camera is held elsewhere."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 5:
        text = str(seen).lower()
        if any(marker in text for marker in _BUSY_MARKERS):
            return True
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return False
