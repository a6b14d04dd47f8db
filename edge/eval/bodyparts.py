"""Body-part groups of BlazePose's 33 landmarks and the torso size every score is divided by.

Torso size (used by every metric in :mod:`edge.eval`): the distance in pixels
between the shoulder midpoint (landmarks 11, 12) and the hip midpoint
(landmarks 23, 24). For a reference stream it is taken from the *reference*
landmarks of the same frame; for human annotations see
:func:`edge.eval.keypoints.annotation_torso_px`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.pose.types import LANDMARK_NAMES, NUM_LANDMARKS

LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_HIP, RIGHT_HIP = 23, 24

#: Landmark indices per body part, in report order.
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "face": tuple(range(0, 11)),
    "shoulders_hips": (11, 12, 23, 24),
    "elbows_knees": (13, 14, 25, 26),
    "wrists_hands": tuple(range(15, 23)),
    "ankles_feet": tuple(range(27, 33)),
}

#: Body part of each landmark index (33 entries).
PART_OF_LANDMARK: tuple[str, ...] = tuple(
    next(part for part, idx in BODY_PARTS.items() if i in idx) for i in range(NUM_LANDMARKS)
)

#: Landmark index by MediaPipe name.
LANDMARK_INDEX: dict[str, int] = {name: i for i, name in enumerate(LANDMARK_NAMES)}


def to_pixels(landmarks: NDArray[np.floating], width: int, height: int) -> NDArray[np.float64]:
    """Normalised ``(..., 33, >=2)`` landmarks -> ``(..., 33, 2)`` pixel x, y."""
    xy = np.asarray(landmarks, dtype=np.float64)[..., :2]
    result: NDArray[np.float64] = xy * np.array([float(width), float(height)])
    return result


def torso_size_px(xy_px: NDArray[np.floating]) -> NDArray[np.float64]:
    """Shoulder-midpoint to hip-midpoint distance of ``(..., 33, 2)`` pixel landmarks.

    Returns shape ``(...)``; NaN where a landmark is NaN.
    """
    xy = np.asarray(xy_px, dtype=np.float64)
    shoulders = 0.5 * (xy[..., LEFT_SHOULDER, :] + xy[..., RIGHT_SHOULDER, :])
    hips = 0.5 * (xy[..., LEFT_HIP, :] + xy[..., RIGHT_HIP, :])
    result: NDArray[np.float64] = np.linalg.norm(shoulders - hips, axis=-1)
    return result
