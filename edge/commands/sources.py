"""`edge-pose sources`: the cameras this machine can see, and how to name them as a source."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

EPILOG = """\
A source is named in the config (`source = "..."`) or on the command line:
  picamera2, picamera2:1        Raspberry Pi camera 0 / 1 (libcamera, via picamera2)
  /dev/video0, 0                USB camera (V4L2, MJPEG where offered)
  rtsp://user@cam/stream1       network camera (RTSP, or http(s):// MJPEG); reconnects
  clip.mp4                      video file (loop and realtime pacing available)
  photo.jpg, folder/            an image, or the images of a folder in name order

examples:
  edge-pose sources
  edge-pose sources --json
"""

HINT = (
    "Hint: plug in a USB camera or attach a Pi camera; or use a video file, an image "
    'folder or an rtsp:// URL as the source (`source = "clip.mp4"` in the config, or '
    "`edge-pose process clip.mp4`)."
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sources",
        help="list the cameras this machine can see",
        description="List libcamera cameras (where picamera2 is installed) and V4L2 devices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--all", action="store_true", help="also show V4L2 nodes that are not cameras")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edge.capture.discovery import discover

    found = discover(include_all=args.all)
    if args.json:
        doc = {"cameras": [asdict(c) for c in found.cameras], "notes": list(found.notes)}
        print(json.dumps(doc, indent=2))
        return 0
    if not found.cameras:
        print("No cameras found.")
        for note in found.notes:
            print(f"  {note}")
        print(HINT)
        return 0
    width = max(len(c.uri) for c in found.cameras)
    print("Cameras (use the first column as the source):")
    for c in found.cameras:
        extra = f" ({c.detail})" if c.detail else ""
        print(f"  {c.uri.ljust(width)}  {c.kind:9s}  {c.name}{extra}")
    for note in found.notes:
        print(f"  note: {note}")
    return 0
