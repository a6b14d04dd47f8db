"""Result streams (JSON Lines records or :class:`PoseResult` objects) as aligned arrays."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.eval.metrics import MIN_REFERENCE_VISIBILITY, Agreement, agreement
from edge.pose.types import NUM_LANDMARKS, PoseResult


@dataclass(frozen=True, slots=True)
class Stream:
    """One pose per frame: ``landmarks`` ``(F, 33, 5)`` normalised, NaN rows where no pose."""

    landmarks: NDArray[np.float64]
    width: NDArray[np.int64]
    height: NDArray[np.int64]

    @property
    def frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def has_pose(self) -> NDArray[np.bool_]:
        result: NDArray[np.bool_] = np.asarray(np.isfinite(self.landmarks[:, :, 0]).all(axis=1))
        return result

    def xy_px(self) -> NDArray[np.float64]:
        """``(F, 33, 2)`` pixel coordinates."""
        scale = np.stack([self.width, self.height], axis=-1).astype(np.float64)
        result: NDArray[np.float64] = self.landmarks[:, :, :2] * scale[:, None, :]
        return result

    @property
    def visibility(self) -> NDArray[np.float64]:
        result: NDArray[np.float64] = self.landmarks[:, :, 3]
        return result


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSON Lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _empty(frames: int) -> NDArray[np.float64]:
    return np.full((frames, NUM_LANDMARKS, 5), np.nan, dtype=np.float64)


def stream_from_records(records: Sequence[Mapping[str, Any]], pose_index: int = 0) -> Stream:
    """The ``pose_index``-th pose of each version-1 record (NaN where absent)."""
    lms = _empty(len(records))
    for i, rec in enumerate(records):
        poses = rec["poses"]
        if len(poses) > pose_index:
            lms[i] = np.asarray(poses[pose_index]["landmarks"], dtype=np.float64)
    return Stream(
        landmarks=lms,
        width=np.array([int(r["width"]) for r in records], dtype=np.int64),
        height=np.array([int(r["height"]) for r in records], dtype=np.int64),
    )


def stream_from_results(results: Iterable[PoseResult], pose_index: int = 0) -> Stream:
    """The ``pose_index``-th pose of each :class:`PoseResult` (NaN where absent)."""
    items = list(results)
    lms = _empty(len(items))
    for i, res in enumerate(items):
        if len(res.poses) > pose_index:
            lms[i] = np.asarray(res.poses[pose_index].landmarks, dtype=np.float64)[:, :5]
    return Stream(
        landmarks=lms,
        width=np.array([r.width for r in items], dtype=np.int64),
        height=np.array([r.height for r in items], dtype=np.int64),
    )


def compare_streams(
    candidate: Stream, reference: Stream, min_visibility: float = MIN_REFERENCE_VISIBILITY
) -> Agreement:
    """:func:`edge.eval.metrics.agreement` of two streams over the same frames."""
    if candidate.frames != reference.frames:
        raise ValueError(f"streams differ in length: {candidate.frames} vs {reference.frames}")
    if not (
        np.array_equal(candidate.width, reference.width)
        and np.array_equal(candidate.height, reference.height)
    ):
        raise ValueError("streams differ in frame size")
    vis = np.nan_to_num(reference.visibility, nan=0.0)
    return agreement(candidate.xy_px(), reference.xy_px(), vis, min_visibility)
