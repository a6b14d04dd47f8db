"""Frames, source descriptions, the `FrameSource` interface and capture errors.

A `Frame` is what every source yields: an RGB ``uint8`` image (H x W x 3,
C-contiguous), a timestamp in nanoseconds, a running index and the name of what
it came from. Timestamps, by source kind:

* ``picamera2``: libcamera's ``SensorTimestamp`` from the request metadata (start
  of exposure, nanoseconds on the kernel's monotonic clock); ``time.monotonic_ns()``
  at capture if a request carries none.
* V4L2 devices, RTSP/HTTP streams, GStreamer pipelines: ``time.monotonic_ns()``
  when the frame was read.
* Video files, image folders and single images: *media time* from the start of
  the file (the frame's presentation time; for images ``index / fps``), growing
  across loops, unless ``realtime`` pacing is on: then ``time.monotonic_ns()``
  when the frame was delivered, as a camera would stamp it.

Either way timestamps strictly increase within one source, so the pose filters can
use them as their only clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

RgbImage = NDArray[np.uint8]


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class Frame:
    """One RGB image from a source. Consumers must not modify `rgb` in place.

    Frames compare and hash by identity (an image array has no useful ``==``).
    """

    rgb: RgbImage
    timestamp_ns: int
    index: int
    #: The image file for image and folder sources; the source's uri otherwise.
    source: str

    def __post_init__(self) -> None:
        a = self.rgb
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"Frame.rgb must be HxWx3 uint8, got {a.shape} {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError("Frame.rgb must be C-contiguous")

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source is, as far as it knows (sizes are of the frames it yields)."""

    #: Adapter kind: "picamera2", "v4l2", "stream", "gstreamer", "file", "folder", "image".
    kind: str
    uri: str
    width: int
    height: int
    #: Frames per second when known (camera setting, file header), else None.
    fps: float | None = None
    #: Frames in a file or folder (one pass), None for live sources.
    frame_count: int | None = None
    #: Library doing the work, e.g. "picamera2 lores YUV420", "opencv V4L2 MJPG".
    backend: str = ""


@runtime_checkable
class FrameSource(Protocol):
    """A source of frames. Adapters live next to this module, one per backend.

    `open` acquires the device or file (a no-op when already open) and raises
    `SourceError` or `SourceFault`; `read` blocks for the next frame and returns
    None at the end of a finite source (a file without ``loop``); live sources
    raise `SourceFault` instead of ending. `close` is idempotent. `describe` is
    meaningful after `open`.
    """

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    def describe(self) -> SourceInfo: ...


class CaptureError(Exception):
    """Base class of every capture error."""


class SourceError(CaptureError):
    """A source that cannot work as configured (bad uri, unreadable file): fix the config."""


class SourceFault(CaptureError):  # noqa: N818 (a fault is retried, not an error)
    """A source that stopped delivering (stream dropped, device unplugged, stalled): retry."""


class CameraNotFoundError(SourceError):
    """No camera (or not the requested one) is attached."""


class CameraBusyError(SourceError):
    """The camera exists but another process holds it."""
