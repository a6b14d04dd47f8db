"""Capture: frame sources (picamera2, OpenCV, images) and the latest-frame buffer.

Typical use (only `edge.app` builds sources)::

    from edge.capture import LatestFrameCapture, SourceOptions, create_source

    source = create_source("picamera2", SourceOptions(width=640, height=480, fps=30))
    with LatestFrameCapture(source, backoff=options.backoff) as capture:
        for frame in capture.frames():
            ...  # frame.rgb, frame.timestamp_ns

Vendor libraries (picamera2, libcamera) are imported only when a source of their
kind is opened.
"""

from edge.capture.factory import ADAPTERS, create_source, open_source, source_kind
from edge.capture.latest import CaptureStats, LatestFrameCapture
from edge.capture.options import BackoffPolicy, SourceOptions, backoff_delay_s
from edge.capture.types import (
    CameraBusyError,
    CameraNotFoundError,
    CaptureError,
    Frame,
    FrameSource,
    SourceError,
    SourceFault,
    SourceInfo,
)

__all__ = [
    "ADAPTERS",
    "BackoffPolicy",
    "CameraBusyError",
    "CameraNotFoundError",
    "CaptureError",
    "CaptureStats",
    "Frame",
    "FrameSource",
    "LatestFrameCapture",
    "SourceError",
    "SourceFault",
    "SourceInfo",
    "SourceOptions",
    "backoff_delay_s",
    "create_source",
    "open_source",
    "source_kind",
]
