"""The wire/file format of one frame's poses (version 1).

Shared by ``edge-pose process --output`` (JSON Lines) and the MQTT ``.../pose``
topic. Described by ``edge/schema/result.v1.json``; keep the two in step.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from edge.pose.types import PoseResult

FORMAT_VERSION = 1
_SIG_DIGITS = 5


def _round(value: float) -> float:
    """Round to a few significant digits (keeps messages small and stable)."""
    if value == 0.0 or math.isnan(value):
        return 0.0
    return float(f"{value:.{_SIG_DIGITS}g}")


def to_record(result: PoseResult, frame_index: int, source: str) -> dict[str, Any]:
    """Turn a :class:`PoseResult` into the version-1 JSON-ready dict."""
    poses = []
    for pose in result.poses:
        poses.append(
            {
                "id": int(pose.id),
                "score": _round(float(pose.score)),
                "landmarks": [[_round(float(v)) for v in row] for row in pose.landmarks.tolist()],
                "world": [[_round(float(v)) for v in row] for row in pose.world.tolist()],
            }
        )
    return {
        "v": FORMAT_VERSION,
        "frame": int(frame_index),
        "ts_ms": round(result.timestamp_ns / 1e6, 3),
        "source": source,
        "width": int(result.width),
        "height": int(result.height),
        "poses": poses,
    }


def dumps(record: dict[str, Any]) -> str:
    """Compact JSON for one record (no spaces, one line)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def schema() -> dict[str, Any]:
    """The JSON Schema of a version-1 record."""
    text = resources.files("edge").joinpath("schema/result.v1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
