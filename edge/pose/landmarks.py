"""Landmark-model post-processing: decode, heatmap refinement, projection to the frame.

Mirrors ``TensorsToLandmarksCalculator`` (39 landmarks, 256 px input, sigmoid
visibility and presence), ``RefineLandmarksFromHeatmapCalculator``,
``LandmarkProjectionCalculator`` and ``WorldLandmarkProjectionCalculator`` as wired
in ``tensors_to_pose_landmarks_and_segmentation.pbtxt`` and
``pose_landmark_by_roi_cpu.pbtxt``. Landmarks are float32 ``(N, 5)`` arrays of
x, y, z, visibility, presence.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.pose.types import Roi

FloatArray = NDArray[np.float32]

#: 33 body landmarks + 2 auxiliary (ROI) + 4 unused.
NUM_MODEL_LANDMARKS = 39
BODY = slice(0, 33)
AUXILIARY = slice(33, 35)
LANDMARK_INPUT_PX = 256
#: The 0.10.14 wheel behaves as kernel 9 (its .pbtxt says 7; see pose-graph.md).
HEATMAP_KERNEL = 9
HEATMAP_MIN_CONFIDENCE = 0.5


def sigmoid(x: NDArray[np.floating]) -> FloatArray:
    with np.errstate(over="ignore"):
        out: FloatArray = (1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)
    return out


def decode_landmarks(
    raw: NDArray[np.float32],
    input_width_px: int = LANDMARK_INPUT_PX,
    input_height_px: int = LANDMARK_INPUT_PX,
) -> FloatArray:
    """``(195,)`` model output -> ``(39, 5)`` crop-normalised landmarks
    (``TensorsToLandmarksCalculator``): x / w, y / h, z / w, sigmoid(visibility),
    sigmoid(presence)."""
    v = np.asarray(raw, np.float32).reshape(-1, 5)
    out = np.empty_like(v)
    out[:, 0] = v[:, 0] / np.float32(input_width_px)
    out[:, 1] = v[:, 1] / np.float32(input_height_px)
    out[:, 2] = v[:, 2] / np.float32(input_width_px)
    out[:, 3:5] = sigmoid(v[:, 3:5])
    return out


@functools.lru_cache(maxsize=8)
def _sigmoid_table(dtype: str, scale: float, zero_point: int) -> FloatArray:
    """sigmoid((q - zero_point) * scale) for every value q of an 8-bit type."""
    info = np.iinfo(np.dtype(dtype))
    q = np.arange(info.min, info.max + 1, dtype=np.float32)
    return sigmoid((q - np.float32(zero_point)) * np.float32(scale))


@functools.lru_cache(maxsize=8)
def _window_offsets(kernel_size: int) -> NDArray[np.intp]:
    half = (kernel_size - 1) // 2
    return np.arange(-half, half + 1, dtype=np.intp)


def refine_from_heatmap(
    landmarks: FloatArray,
    heatmap: NDArray[Any],
    kernel_size: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
    *,
    quant_scale: float = 0.0,
    quant_zero_point: int = 0,
) -> FloatArray:
    """Replace x, y by the sigmoid-weighted mean of a kernel window of each landmark's
    heatmap channel (``RefineLandmarksFromHeatmapCalculator``).

    ``heatmap`` is ``(H, W, N)`` (or with a leading batch of 1) of logits. A landmark
    is refined only when the window's max confidence reaches ``min_confidence``.
    A quantised heatmap can be passed raw with its ``quant_scale`` and
    ``quant_zero_point``: only the windows' cells are dequantised.
    MediaPipe's quirks are kept: the centre cell is ``int()`` truncation towards zero,
    and the skip test checks the column twice and the row only against 0, so a
    centre row just past the bottom still uses the rows of the window that exist.
    """
    hm = heatmap.reshape(tuple(heatmap.shape)[-3:])
    hm_h, hm_w, channels = (int(v) for v in hm.shape)
    n = landmarks.shape[0]
    if channels < n:
        raise ValueError(f"heatmap has {channels} channels for {n} landmarks")
    out = landmarks.copy()
    col = np.trunc(landmarks[:, 0] * np.float32(hm_w)).astype(np.intp)
    row = np.trunc(landmarks[:, 1] * np.float32(hm_h)).astype(np.intp)
    active = (col >= 0) & (col < hm_w) & (row >= 0)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return out
    offsets = _window_offsets(kernel_size)
    rows = row[idx, None] + offsets  # (k, K)
    cols = col[idx, None] + offsets  # (k, K)
    # Per-frame cost matters here (pipeline overhead target): few numpy calls, and
    # np.minimum/np.maximum rather than np.clip (several times slower on small arrays).
    # One gather of the k windows from the flat HWC buffer (MediaPipe's layout).
    row_start = np.maximum(np.minimum(rows, hm_h - 1), 0)
    row_start *= hm_w * channels
    col_start = np.maximum(np.minimum(cols, hm_w - 1), 0)
    col_start *= channels
    col_start += idx[:, None]
    flat = row_start[:, :, None] + col_start[:, None, :]
    values = hm.reshape(-1).take(flat)  # (k, K, K)
    if quant_scale > 0.0 and values.dtype in (np.dtype(np.int8), np.dtype(np.uint8)):
        # Integer heatmap: sigmoid of every possible value, looked up (an int8 value
        # q sits at q + 128 in the table: its byte with the top bit flipped).
        lut = _sigmoid_table(values.dtype.str, quant_scale, quant_zero_point)
        if values.dtype == np.dtype(np.int8):
            conf = lut.take(values.view(np.uint8) ^ np.uint8(0x80))
        else:
            conf = lut.take(values)
    elif quant_scale > 0.0:
        conf = sigmoid((values.astype(np.float32) - np.float32(quant_zero_point)) * quant_scale)
    else:
        conf = sigmoid(values)
    row_ok = (rows >= 0) & (rows < hm_h)
    col_ok = (cols >= 0) & (cols < hm_w)
    conf *= row_ok[:, :, None] & col_ok[:, None, :]
    total = conf.sum(axis=(1, 2), dtype=np.float32)
    max_conf = conf.max(axis=(1, 2))
    # float32 products summed over the whole window, as MediaPipe accumulates.
    w_col = (conf * cols.astype(np.float32)[:, None, :]).sum(axis=(1, 2), dtype=np.float32)
    w_row = (conf * rows.astype(np.float32)[:, :, None]).sum(axis=(1, 2), dtype=np.float32)
    refine = (max_conf >= np.float32(min_confidence)) & (total > 0)
    sel = idx[refine]
    out[sel, 0] = w_col[refine] / np.float32(hm_w) / total[refine]
    out[sel, 1] = w_row[refine] / np.float32(hm_h) / total[refine]
    return out


def project_landmarks(landmarks: FloatArray, roi: Roi, width_px: int, height_px: int) -> FloatArray:
    """Crop-normalised landmarks -> frame-normalised (``LandmarkProjectionCalculator``).

    Rotates (x - 0.5, y - 0.5) by the ROI's rotation, scales by the ROI size and adds
    its centre; z is scaled like x (by the ROI width). Visibility and presence are
    copied.
    """
    out = landmarks.copy()
    angle = roi.rotation_rad
    c = np.float32(math.cos(angle))
    s = np.float32(math.sin(angle))
    x = landmarks[:, 0] - np.float32(0.5)
    y = landmarks[:, 1] - np.float32(0.5)
    w_norm = np.float32(roi.width_px / width_px)
    h_norm = np.float32(roi.height_px / height_px)
    out[:, 0] = (c * x - s * y) * w_norm + np.float32(roi.center_x_px / width_px)
    out[:, 1] = (s * x + c * y) * h_norm + np.float32(roi.center_y_px / height_px)
    out[:, 2] = landmarks[:, 2] * w_norm
    return out


def unproject_landmarks(
    landmarks: FloatArray, roi: Roi, width_px: int, height_px: int
) -> FloatArray:
    """Inverse of :func:`project_landmarks` (frame-normalised -> crop-normalised)."""
    out = landmarks.astype(np.float64).copy()
    angle = roi.rotation_rad
    c, s = math.cos(angle), math.sin(angle)
    x = (landmarks[:, 0] - roi.center_x_px / width_px) / (roi.width_px / width_px)
    y = (landmarks[:, 1] - roi.center_y_px / height_px) / (roi.height_px / height_px)
    out[:, 0] = c * x + s * y + 0.5
    out[:, 1] = -s * x + c * y + 0.5
    out[:, 2] = landmarks[:, 2] / (roi.width_px / width_px)
    return out.astype(np.float32)


def project_world_landmarks(world: NDArray[np.float32], rotation_rad: float) -> FloatArray:
    """Rotate world landmarks (metres) about z by the ROI rotation
    (``WorldLandmarkProjectionCalculator``). ``world`` is ``(N, 3)`` or ``(3N,)``."""
    w = np.asarray(world, np.float32).reshape(-1, 3)
    out = w.copy()
    c = np.float32(math.cos(rotation_rad))
    s = np.float32(math.sin(rotation_rad))
    out[:, 0] = c * w[:, 0] - s * w[:, 1]
    out[:, 1] = s * w[:, 0] + c * w[:, 1]
    return out
