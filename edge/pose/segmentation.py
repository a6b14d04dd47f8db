"""Segmentation mask: sigmoid, warp back to the frame, temporal smoothing.

Mirrors ``TensorsToSegmentationCalculator`` (sigmoid), the ``WarpAffineCalculator``
of ``PoseLandmarksAndSegmentationInverseProjection`` (crop -> frame, zero border)
and ``SegmentationSmoothingCalculator`` (``combine_with_previous_ratio`` 0.7).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.pose.crop import inverse_crop_matrix
from edge.pose.types import Roi

FloatArray = NDArray[np.float32]

COMBINE_WITH_PREVIOUS_RATIO = 0.7


def decode_segmentation(logits: NDArray[np.float32]) -> FloatArray:
    """``(1, h, w, 1)`` logits -> ``(h, w)`` probabilities."""
    x = np.asarray(logits, np.float32)
    x = x.reshape(x.shape[-3], x.shape[-2]) if x.ndim >= 3 else x
    with np.errstate(over="ignore"):
        out: FloatArray = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    return out


def mask_to_frame(mask: FloatArray, roi: Roi, width_px: int, height_px: int) -> FloatArray:
    """Warp a crop-space mask back onto the full frame (zero outside the ROI)."""
    h, w = mask.shape
    matrix = inverse_crop_matrix(roi, w, h)
    out = cv2.warpAffine(
        mask,
        matrix,
        (width_px, height_px),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return np.asarray(out, dtype=np.float32)


def smooth_segmentation(
    current: FloatArray,
    previous: FloatArray | None,
    combine_with_previous_ratio: float = COMBINE_WITH_PREVIOUS_RATIO,
) -> FloatArray:
    """Blend with the previous mask where the current one is uncertain
    (``SegmentationSmoothingCalculator``: a polynomial of (p - 0.5)^2 approximates
    the squared-entropy uncertainty)."""
    if previous is None or previous.shape != current.shape:
        return current
    t = current - np.float32(0.5)
    x = t * t
    c1, c2, c3, c4, c5 = 5.68842, -0.748699, -57.8051, 291.309, -624.717
    poly = x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * c5))))
    uncertainty = np.float32(1.0) - np.minimum(np.float32(1.0), poly.astype(np.float32))
    out: FloatArray = (
        current + (previous - current) * (uncertainty * np.float32(combine_with_previous_ratio))
    ).astype(np.float32)
    return out
