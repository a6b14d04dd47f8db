"""Measurement: metrics, dataset loaders and reference comparisons for edge-pose.

Everything numeric here is a pure function over numpy arrays (see
:mod:`edge.eval.metrics`, :mod:`edge.eval.presence`, :mod:`edge.eval.identity`).
Loaders for human-annotated keypoint sets live in :mod:`edge.eval.keypoints`,
result streams in :mod:`edge.eval.results`. Running a pipeline over data (the
keypoint protocol, the scoreboard) is in :mod:`edge.eval.protocol` and
:mod:`edge.eval.scoreboard`; those import the pose pipeline lazily.
"""

from __future__ import annotations

from edge.eval.bodyparts import BODY_PARTS, torso_size_px
from edge.eval.metrics import Agreement, PartStats, PckScore, agreement, pck, torso_errors

__all__ = [
    "BODY_PARTS",
    "Agreement",
    "PartStats",
    "PckScore",
    "agreement",
    "pck",
    "torso_errors",
    "torso_size_px",
]
