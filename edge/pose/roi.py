"""Regions of interest: detection/landmarks -> rotated square crop rectangle.

Mirrors MediaPipe's ``AlignmentPointsRectsCalculator`` (centre = keypoint 0, size =
2 x |kp1 - kp0|, rotation so that kp0 -> kp1 points up: target angle 90 degrees)
followed by ``RectTransformationCalculator`` (scale 1.25 on both sides,
``square_long``), as wired in ``pose_detection_to_roi.pbtxt`` and
``pose_landmarks_to_roi.pbtxt``. MediaPipe works in normalised coordinates; a
:class:`~edge.pose.types.Roi` holds the same rectangle in frame pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.pose.types import Roi

#: ``rotation_vector_target_angle_degrees: 90``.
TARGET_ANGLE_RAD = math.pi / 2
#: ``RectTransformationCalculator`` scale_x / scale_y of the pose graphs.
ROI_SCALE = 1.25


def normalize_radians(angle_rad: float) -> float:
    """Wrap an angle to [-pi, pi) (MediaPipe's ``NormalizeRadians``)."""
    return angle_rad - 2 * math.pi * math.floor((angle_rad + math.pi) / (2 * math.pi))


def alignment_roi(
    start_xy: tuple[float, float] | NDArray[np.floating],
    end_xy: tuple[float, float] | NDArray[np.floating],
    width_px: int,
    height_px: int,
    target_angle_rad: float = TARGET_ANGLE_RAD,
) -> Roi:
    """Square rectangle centred on ``start`` with side 2 x |end - start| in pixels
    (``AlignmentPointsRectsCalculator``). Points are normalised to the frame."""
    x0 = float(start_xy[0]) * width_px
    y0 = float(start_xy[1]) * height_px
    x1 = float(end_xy[0]) * width_px
    y1 = float(end_xy[1]) * height_px
    size = math.hypot(x1 - x0, y1 - y0) * 2.0
    rotation = normalize_radians(target_angle_rad - math.atan2(-(y1 - y0), x1 - x0))
    return Roi(x0, y0, size, size, rotation)


def transform_roi(roi: Roi, scale: float = ROI_SCALE, square_long: bool = True) -> Roi:
    """Enlarge (and square) a rectangle (``RectTransformationCalculator``, no shift)."""
    w, h = roi.width_px, roi.height_px
    if square_long:
        w = h = max(w, h)
    return Roi(roi.center_x_px, roi.center_y_px, w * scale, h * scale, roi.rotation_rad)


def detection_to_roi(keypoints_xy: NDArray[np.floating], width_px: int, height_px: int) -> Roi:
    """The landmark-model ROI of one detection (``PoseDetectionToRoi``): keypoint 0
    (mid-hip) -> keypoint 1 (full-body point), 90 degrees, x1.25, square."""
    return transform_roi(alignment_roi(keypoints_xy[0], keypoints_xy[1], width_px, height_px))


def landmarks_to_roi(aux_xy: NDArray[np.floating], width_px: int, height_px: int) -> Roi:
    """The next frame's ROI from the 2 auxiliary landmarks (``PoseLandmarksToRoi``)."""
    return transform_roi(alignment_roi(aux_xy[0], aux_xy[1], width_px, height_px))


def object_scale_px(aux_xy: NDArray[np.floating], width_px: int, height_px: int) -> float:
    """Object scale the landmark filters divide by: ``(w + h) / 2`` of the unscaled
    alignment rectangle of the raw auxiliary landmarks (``pose_landmark_filtering``'s
    ``OBJECT_SCALE_ROI`` and ``GetObjectScale``)."""
    roi = alignment_roi(aux_xy[0], aux_xy[1], width_px, height_px)
    return (roi.width_px + roi.height_px) / 2.0


def roi_corners_px(roi: Roi) -> NDArray[np.float32]:
    """The 4 corners as ``cv2.boxPoints`` orders them: bottom-left, top-left,
    top-right, bottom-right of the unrotated rectangle."""
    rect = (
        (roi.center_x_px, roi.center_y_px),
        (roi.width_px, roi.height_px),
        math.degrees(roi.rotation_rad),
    )
    corners: NDArray[np.float32] = cv2.boxPoints(rect).astype(np.float32)
    return corners


def roi_iou(a: Roi, b: Roi) -> float:
    """Intersection over union of two rotated rectangles (for duplicate tracks)."""
    pa = roi_corners_px(a)
    pb = roi_corners_px(b)
    area_a = a.width_px * a.height_px
    area_b = b.width_px * b.height_px
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter_area, _ = cv2.intersectConvexConvex(pa, pb)
    inter = max(float(inter_area), 0.0)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def roi_offset(a: Roi, b: Roi) -> float:
    """Centre distance over the mean side: 0 for concentric ROIs. Two people side by
    side are about 0.3 apart even when their 1.25x ROIs overlap by IoU > 0.5."""
    size = (max(a.width_px, a.height_px) + max(b.width_px, b.height_px)) / 2.0
    if size <= 0.0:
        return math.inf
    return math.hypot(a.center_x_px - b.center_x_px, a.center_y_px - b.center_y_px) / size


def same_region(a: Roi, b: Roi, max_offset: float, max_size_ratio: float = 1.5) -> bool:
    """Whether two ROIs frame the same person: nearly concentric, similar size."""
    sa, sb = max(a.width_px, a.height_px), max(b.width_px, b.height_px)
    if sa <= 0.0 or sb <= 0.0 or max(sa, sb) / min(sa, sb) > max_size_ratio:
        return False
    return roi_offset(a, b) < max_offset
