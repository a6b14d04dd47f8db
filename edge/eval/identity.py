"""Id stability of multi-person tracks, without identity labels.

Each frame's tracks are matched by torso centre (greedy, nearest first, within
a gate) to the last known centres of the ids seen in the previous
``memory_frames`` frames; a matched pair whose ids differ is an id switch: two
people swapping ids, or a track dropped and re-created with a new id (also
across a few frames without that track).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.eval.bodyparts import LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER


@dataclass(frozen=True, slots=True)
class TrackedFrame:
    """The tracks of one frame: ids ``(k,)`` and torso centres ``(k, 2)`` in pixels."""

    ids: NDArray[np.int64]
    centres_px: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class IdStability:
    frames: int
    #: Frames with at least one track and at least one recently seen id to match.
    transitions: int
    #: Of those, frames with at least one id switch.
    switch_transitions: int
    #: Frames with exactly the expected number of tracks (when given).
    frames_with_expected_count: int
    distinct_ids: int

    @property
    def stable_fraction(self) -> float:
        """Share of transitions without an id switch (1.0 when nothing to compare)."""
        if self.transitions == 0:
            return 1.0
        return 1.0 - self.switch_transitions / self.transitions


def torso_centres_px(xy_px: NDArray[np.floating]) -> NDArray[np.float64]:
    """``(k, 33, 2)`` pixel landmarks -> ``(k, 2)`` centres of shoulders and hips."""
    xy = np.asarray(xy_px, dtype=np.float64)
    idx = [LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]
    result: NDArray[np.float64] = xy[:, idx, :].mean(axis=1)
    return result


def match_nearest(
    a_px: NDArray[np.float64], b_px: NDArray[np.float64], gate_px: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of two point sets by distance, nearest pairs first."""
    if a_px.size == 0 or b_px.size == 0:
        return []
    d = np.linalg.norm(a_px[:, None, :] - b_px[None, :, :], axis=-1)
    pairs: list[tuple[int, int]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), d.shape[1])
        if d[i, j] > gate_px:
            break
        if i in used_a or j in used_b:
            continue
        pairs.append((i, j))
        used_a.add(i)
        used_b.add(j)
    return pairs


def id_stability(
    frames: Sequence[TrackedFrame],
    expected_count: int | None = None,
    gate_px: float = float("inf"),
    memory_frames: int = 30,
) -> IdStability:
    """Count frames with id switches in a multi-person track stream."""
    transitions = switches = 0
    expected_frames = 0
    #: id -> (last centre, frame index)
    last_seen: dict[int, tuple[NDArray[np.float64], int]] = {}
    for t, frame in enumerate(frames):
        if expected_count is not None and len(frame.ids) == expected_count:
            expected_frames += 1
        recent = [(i, c) for i, (c, seen) in last_seen.items() if t - seen <= memory_frames]
        if len(frame.ids) and recent:
            transitions += 1
            known = np.stack([c for _, c in recent])
            pairs = match_nearest(known, frame.centres_px, gate_px)
            if any(recent[i][0] != int(frame.ids[j]) for i, j in pairs):
                switches += 1
        for track_id, centre in zip(frame.ids, frame.centres_px, strict=True):
            last_seen[int(track_id)] = (np.asarray(centre, dtype=np.float64), t)
    return IdStability(
        frames=len(frames),
        transitions=transitions,
        switch_transitions=switches,
        frames_with_expected_count=expected_frames,
        distinct_ids=len(last_seen),
    )
