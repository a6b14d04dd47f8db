"""Draw poses on frames: the BlazePose skeleton, one colour per track id.

Used by ``edge-pose process --annotate``. Pure drawing on a BGR uint8 image with
OpenCV; nothing here reads files or the clock.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.pose.types import Pose

#: MediaPipe's ``POSE_CONNECTIONS`` (landmark index pairs).
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

#: BGR colours, cycled by track id.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (80, 220, 60),
    (40, 160, 255),
    (255, 120, 40),
    (200, 60, 220),
    (60, 220, 220),
    (60, 60, 240),
)

MIN_VISIBILITY = 0.5


def draw_pose(
    image_bgr: NDArray[np.uint8], pose: Pose, min_visibility: float = MIN_VISIBILITY
) -> None:
    """Draw one pose's skeleton (landmarks with visibility above ``min_visibility``)
    and its id, in place."""
    h, w = image_bgr.shape[:2]
    colour = PALETTE[pose.id % len(PALETTE)]
    thickness = max(1, round(min(w, h) / 240))
    lm = pose.landmarks
    pts = np.stack([lm[:, 0] * w, lm[:, 1] * h], axis=1)
    finite = np.isfinite(pts).all(axis=1)
    pix = np.where(finite[:, None], np.round(pts), 0).astype(np.int64)
    visible = finite & (lm[:, 3] >= min_visibility)
    for a, b in POSE_CONNECTIONS:
        if visible[a] and visible[b]:
            cv2.line(
                image_bgr,
                (int(pix[a, 0]), int(pix[a, 1])),
                (int(pix[b, 0]), int(pix[b, 1])),
                colour,
                thickness,
                cv2.LINE_AA,
            )
    for i in np.flatnonzero(visible):
        centre = (int(pix[i, 0]), int(pix[i, 1]))
        cv2.circle(image_bgr, centre, thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    if visible[[11, 12]].any():
        top = pix[[11, 12]][visible[[11, 12]]].min(axis=0)
        org = (int(top[0]), max(12, int(top[1]) - 3 * thickness))
        cv2.putText(
            image_bgr,
            f"#{pose.id}",
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness + 0.2,
            colour,
            thickness,
            cv2.LINE_AA,
        )


def draw_poses(image_bgr: NDArray[np.uint8], poses: tuple[Pose, ...] | list[Pose]) -> None:
    """Draw every pose in place."""
    for pose in poses:
        draw_pose(image_bgr, pose)
