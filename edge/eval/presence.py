"""Presence-interval scoring: is a person reported when (and only when) someone is there?

Intervals are inclusive frame ranges ``[start, end]`` with a person present
(``*.presence.json``: ``present_intervals_frames``). Inside an interval the first
``grace_frames`` frames are allowed for pick-up; a pose more than
``grace_frames`` outside every interval is a ghost. The annotation's own
boundaries are approximate (+-3 frames in ``one-by-one-enter-leave``):
``end_tolerance_frames`` leaves that many last frames of each interval out of
the recall (default 0: the issue's definition).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: Frames allowed for pick-up after an annotated start, and margin around intervals for ghosts.
GRACE_FRAMES = 5
#: Suffix that replaces a video's own: ``clip.mp4`` -> ``clip.presence.json``.
PRESENCE_SUFFIX = ".presence.json"

Intervals = list[tuple[int, int]]


def read_intervals(video: Path) -> Intervals | None:
    """The annotated presence intervals beside ``video`` (``None`` when it has no annotation)."""
    path = video.with_suffix(PRESENCE_SUFFIX)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())["present_intervals_frames"]
    return [(int(start), int(end)) for start, end in raw]


def frame_presence(
    index: int, intervals: Sequence[tuple[int, int]], margin_frames: int = GRACE_FRAMES
) -> bool | None:
    """``True`` inside an interval, ``False`` more than ``margin_frames`` outside every one,
    ``None`` (not sure: the annotation's boundaries are approximate) in between."""
    if any(start <= index <= end for start, end in intervals):
        return True
    if any(start - margin_frames <= index <= end + margin_frames for start, end in intervals):
        return None
    return False


@dataclass(frozen=True, slots=True)
class PresenceScore:
    #: Frames inside intervals (after the grace period) with a pose / such frames.
    recall: float
    frames_inside: int
    #: Frames more than the grace period outside every interval with a pose / such frames.
    ghost_rate: float
    frames_outside: int
    #: Per interval: frames from the annotated start to the first pose (None if never).
    pickup_delay_frames: tuple[int | None, ...]


def presence_score(
    has_pose: NDArray[np.bool_],
    intervals: Sequence[tuple[int, int]],
    grace_frames: int = GRACE_FRAMES,
    end_tolerance_frames: int = 0,
) -> PresenceScore:
    """Score a per-frame "a pose was reported" flag against annotated presence intervals."""
    flags = np.asarray(has_pose, dtype=bool)
    n = flags.size
    frames = np.arange(n)
    inside = np.zeros(n, dtype=bool)
    near = np.zeros(n, dtype=bool)
    delays: list[int | None] = []
    for start, end in intervals:
        if end < start:
            raise ValueError(f"interval end {end} before start {start}")
        inside |= (frames >= start + grace_frames) & (frames <= end - end_tolerance_frames)
        near |= (frames >= start - grace_frames) & (frames <= end + grace_frames)
        hits = np.flatnonzero(flags[max(start, 0) : end + 1])
        delays.append(int(hits[0]) if hits.size else None)
    outside = ~near
    n_in, n_out = int(inside.sum()), int(outside.sum())
    return PresenceScore(
        recall=float(flags[inside].mean()) if n_in else float("nan"),
        frames_inside=n_in,
        ghost_rate=float(flags[outside].mean()) if n_out else float("nan"),
        frames_outside=n_out,
        pickup_delay_frames=tuple(delays),
    )
