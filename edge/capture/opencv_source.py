"""OpenCV sources: V4L2 devices, RTSP/HTTP streams, video files, GStreamer pipelines."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.capture.convert import bgr_to_rgb, orient
from edge.capture.options import SourceOptions
from edge.capture.pacing import Pacer
from edge.capture.types import Frame, SourceError, SourceFault, SourceInfo

log = logging.getLogger(__name__)

#: The kinds this module serves (see `edge.capture.factory`).
KINDS = ("v4l2", "stream", "file", "gstreamer")


def has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipeline strings."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class OpenCvSource:
    """A `cv2.VideoCapture` behind the `FrameSource` interface.

    `kind` is "v4l2" (``/dev/videoN`` or an index), "stream" (rtsp/http),
    "file" (a video file) or "gstreamer" (a pipeline ending in ``appsink``).
    Live kinds turn a failed read into `SourceFault` (a network stream's read times
    out after ``stall_timeout_s``); files end (or loop) and turn an unreadable file
    into `SourceError` naming it.
    """

    def __init__(
        self,
        uri: str,
        kind: str,
        options: SourceOptions,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"OpenCvSource cannot serve kind {kind!r}")
        self.uri = uri
        self.kind = kind
        self.options = options
        self._clock_ns = clock_ns
        self._cap: cv2.VideoCapture | None = None
        self._pacer = Pacer(clock_ns, sleep)
        self._index = 0
        self._fps: float | None = None
        self._frame_count: int | None = None
        self._size = (0, 0)
        self._backend = ""
        # files: media time of the first frame of the current pass, last timestamp
        self._loop_offset_ns = 0
        self._last_media_ns = -1
        self._frames_this_pass = 0

    # -- FrameSource ------------------------------------------------------------

    def open(self) -> None:
        if self._cap is not None:
            return
        cap = self._open_capture()
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if 0 < fps < 1000 else self.options.fps
        if self.kind == "file":
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self._frame_count = n if n > 0 else None
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if self.options.rotation in (90, 270):
            w, h = h, w
        self._size = (w, h)
        self._backend = f"opencv {cap.getBackendName()}"
        if self.kind == "v4l2":
            fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
            code = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\0")
            self._backend += f" {code}" if code.isprintable() and code else ""
        self._frames_this_pass = 0
        log.info("opened %s (%s, %dx%d, fps %s)", self.uri, self._backend, w, h, self._fps)

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"{self.uri}: read() before open()")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self.kind != "file":
                raise SourceFault(self._lost_message())
            if self._frames_this_pass == 0:
                raise SourceError(f"cannot decode any frame of video file {self.uri}")
            if not self.options.loop:
                return None
            self._rewind()
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                raise SourceError(f"cannot decode video file {self.uri} after rewinding")
        rgb = orient(bgr_to_rgb(bgr), self.options.rotation, self.options.hflip, self.options.vflip)
        self._frames_this_pass += 1
        timestamp_ns = self._timestamp_ns()
        frame = Frame(rgb=rgb, timestamp_ns=timestamp_ns, index=self._index, source=self.uri)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def describe(self) -> SourceInfo:
        return SourceInfo(
            kind=self.kind,
            uri=self.uri,
            width=self._size[0],
            height=self._size[1],
            fps=self._fps,
            frame_count=self._frame_count,
            backend=self._backend,
        )

    # -- internals --------------------------------------------------------------

    def _open_capture(self) -> cv2.VideoCapture:
        o = self.options
        if self.kind == "file":
            if not Path(self.uri).is_file():
                raise SourceError(f"video file not found: {self.uri}")
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG)
            if not cap.isOpened():
                cap = cv2.VideoCapture(self.uri)
            if not cap.isOpened():
                raise SourceError(f"cannot open video file {self.uri} (not a video OpenCV decodes)")
            return cap
        if self.kind == "gstreamer":
            if not has_gstreamer():
                raise SourceError(
                    "this OpenCV build has no GStreamer support; use a device path, "
                    "an rtsp:// or http:// URL, or install an OpenCV built with GStreamer"
                )
            cap = cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)
            if not cap.isOpened():
                raise SourceFault(f"GStreamer pipeline did not start: {self.uri}")
            return cap
        if self.kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                round(o.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                round(o.stall_timeout_s * 1000),
            ]
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
            if not cap.isOpened():
                raise SourceFault(f"cannot open stream {self.uri} (unreachable or not a stream)")
            return cap
        return self._open_v4l2()

    def _open_v4l2(self) -> cv2.VideoCapture:
        o = self.options
        target: int | str = int(self.uri) if self.uri.isdigit() else self.uri
        if isinstance(target, str) and not os.path.exists(target):
            raise SourceFault(f"{target}: no such device (camera unplugged?)")
        # OpenCV's V4L2 backend waits for a frame in select() with a timeout in whole
        # seconds taken from this variable once per process (default 10 s); it ignores
        # CAP_PROP_READ_TIMEOUT_MSEC. Set it, unless the user did, so that a stalled
        # camera surfaces as a failed read after about stall_timeout_s.
        os.environ.setdefault(
            "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(max(1, math.ceil(o.stall_timeout_s)))
        )
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise SourceFault(f"cannot open V4L2 device {self.uri} (in use, or not a camera)")
        if o.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*o.fourcc))
        if o.width is not None and o.height is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, o.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, o.height)
        if o.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, o.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the freshest frame, not a queue of old ones
        return cap

    def _lost_message(self) -> str:
        if self.kind == "stream":
            return (
                f"stream {self.uri} stopped delivering (dropped, or no frame for "
                f"{self.options.stall_timeout_s:g} s)"
            )
        if self.kind == "v4l2":
            return f"V4L2 device {self.uri} stopped delivering (unplugged or stalled)"
        return f"GStreamer pipeline stopped delivering: {self.uri}"

    def _rewind(self) -> None:
        """Start the file again; media time goes on from where the last pass ended."""
        assert self._cap is not None
        self._loop_offset_ns = self._last_media_ns + self._period_ns()
        self._cap.release()
        self._cap = None
        self.open()

    def _period_ns(self) -> int:
        fps = self._fps or 30.0
        return round(1e9 / fps)

    def _timestamp_ns(self) -> int:
        if self.kind != "file":
            return self._clock_ns()
        assert self._cap is not None
        pts_ns = round(float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) * 1e6)
        media_ns = self._loop_offset_ns + pts_ns
        if media_ns <= self._last_media_ns:  # a container without usable pts
            media_ns = self._last_media_ns + self._period_ns()
        self._last_media_ns = media_ns
        if self.options.realtime:
            return self._pacer.wait_until(media_ns)
        return media_ns
