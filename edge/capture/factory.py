"""Pick the adapter for a source uri: `source_kind`, `create_source`, `open_source`.

================  ==========  ==============================================
uri               kind        adapter
================  ==========  ==============================================
picamera2[:N]     picamera2   `Picamera2Source` (Raspberry Pi camera N)
/dev/videoN, N    v4l2        `OpenCvSource` (V4L2 backend, MJPG)
rtsp://, http://  stream      `OpenCvSource` (FFmpeg, reconnects on faults)
"... ! appsink"   gstreamer   `OpenCvSource` (where OpenCV has GStreamer)
clip.mp4          file        `OpenCvSource` (loop, realtime pacing)
photo.jpg         image       `ImageSource`
folder/           folder      `ImageSource` (images in name order)
================  ==========  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edge.capture.image_source import ImageSource, is_image_file
from edge.capture.opencv_source import OpenCvSource
from edge.capture.options import SourceOptions
from edge.capture.picamera2_source import Picamera2Source
from edge.capture.types import FrameSource, SourceError

SourceFactory = Callable[[str, str, SourceOptions], FrameSource]


def _picamera2(uri: str, kind: str, options: SourceOptions) -> FrameSource:
    return Picamera2Source(uri, options)


def _opencv(uri: str, kind: str, options: SourceOptions) -> FrameSource:
    return OpenCvSource(uri, kind, options)


def _images(uri: str, kind: str, options: SourceOptions) -> FrameSource:
    return ImageSource(uri, kind, options)


#: The adapters, by kind. Add a backend here (and to `source_kind`).
ADAPTERS: dict[str, SourceFactory] = {
    "picamera2": _picamera2,
    "v4l2": _opencv,
    "stream": _opencv,
    "gstreamer": _opencv,
    "file": _opencv,
    "image": _images,
    "folder": _images,
}

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_PICAMERA2 = re.compile(r"^picamera2(:\d+)?$")


def source_kind(uri: str) -> str:
    """The adapter kind for `uri`; raises `SourceError` when none fits."""
    u = uri.strip()
    if not u:
        raise SourceError("empty source: give picamera2, /dev/videoN, a URL, a file or a folder")
    low = u.lower()
    if _PICAMERA2.match(low):
        return "picamera2"
    if low.startswith(_STREAM_SCHEMES):
        return "stream"
    if "!" in u and "appsink" in u:
        return "gstreamer"
    if u.isdigit() or re.fullmatch(r"/dev/video\d+", u) or u.startswith("/dev/v4l/"):
        return "v4l2"
    path = Path(u)
    if path.is_dir():
        return "folder"
    if is_image_file(path):
        return "image"
    if path.exists():
        return "file"
    if low.startswith("picamera"):
        raise SourceError(f"unknown source {uri!r}: did you mean picamera2 or picamera2:N?")
    raise SourceError(
        f"source {uri!r} not found: expected picamera2, /dev/videoN, rtsp:// or http(s):// "
        "URL, a video file, an image or a folder of images"
    )


def create_source(uri: str, options: SourceOptions | None = None) -> FrameSource:
    """The adapter for `uri`, not opened yet (`LatestFrameCapture.start` opens it)."""
    kind = source_kind(uri)
    return ADAPTERS[kind](uri.strip(), kind, options or SourceOptions())


def open_source(uri: str, options: SourceOptions | None = None) -> FrameSource:
    """The adapter for `uri`, opened: errors (missing camera, bad file) surface here."""
    source = create_source(uri, options)
    source.open()
    return source
