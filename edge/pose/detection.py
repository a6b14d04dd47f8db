"""Person-detector post-processing: decode, weighted NMS, letterbox removal.

Mirrors MediaPipe's ``TensorsToDetectionsCalculator``, ``NonMaxSuppressionCalculator``
(``WEIGHTED``, IoU) and ``DetectionLetterboxRemovalCalculator`` with the values of
``pose_detection_cpu.pbtxt``. Coordinates are normalised to the detector input
(224 x 224) until :func:`remove_letterbox` maps them to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]

#: ``pose_detection_cpu.pbtxt`` values.
NUM_KEYPOINTS = 4
DETECTOR_INPUT_PX = 224.0
SCORE_CLIPPING = 100.0
NMS_IOU_THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class Detections:
    """N detections, best first after NMS.

    ``boxes`` (N, 4) = xmin, ymin, xmax, ymax and ``keypoints`` (N, 4, 2) = x, y, both
    normalised; ``scores`` (N,) probabilities. Keypoints: 0 mid-hip, 1 full-body
    size/rotation point, 2 mid-shoulder, 3 upper-body size/rotation point.
    """

    scores: FloatArray
    boxes: FloatArray
    keypoints: FloatArray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty(num_keypoints: int = NUM_KEYPOINTS) -> Detections:
        return Detections(
            np.zeros((0,), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0, num_keypoints, 2), np.float32),
        )

    def take(self, index: NDArray[np.intp] | list[int]) -> Detections:
        idx = np.asarray(index, dtype=np.intp)
        return Detections(self.scores[idx], self.boxes[idx], self.keypoints[idx])


def sigmoid(x: NDArray[np.float32]) -> FloatArray:
    """Logistic function in float32."""
    with np.errstate(over="ignore"):
        out: FloatArray = (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)
    return out


def decode_detections(
    raw_boxes: NDArray[np.float32],
    raw_scores: NDArray[np.float32],
    anchors: FloatArray,
    *,
    min_score: float = 0.5,
    scale_px: float = DETECTOR_INPUT_PX,
    num_keypoints: int = NUM_KEYPOINTS,
    score_clipping: float = SCORE_CLIPPING,
    strict: bool = False,
) -> Detections:
    """Decode the raw SSD tensors (``TensorsToDetectionsCalculator``).

    ``raw_boxes`` (2254, 12) with ``reverse_output_order`` (x before y): centre
    offset, size, then 4 keypoints, all in input pixels relative to the anchor
    centre; ``raw_scores`` (2254,) or (2254, 1) logits, clipped to +-100 and passed
    through a sigmoid. Keeps detections whose score is >= ``min_score`` (MediaPipe),
    or > ``min_score`` with ``strict``.
    """
    boxes_raw = np.asarray(raw_boxes, dtype=np.float32).reshape(anchors.shape[0], -1)
    logits = np.asarray(raw_scores, dtype=np.float32).reshape(anchors.shape[0])
    scores = sigmoid(np.clip(logits, -score_clipping, score_clipping))
    keep = np.flatnonzero(scores > min_score if strict else scores >= min_score)
    if keep.size == 0:
        return Detections.empty(num_keypoints)
    b = boxes_raw[keep]
    a = anchors[keep]
    s = np.float32(scale_px)
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    cx = b[:, 0] / s * aw + ax
    cy = b[:, 1] / s * ah + ay
    w = b[:, 2] / s * aw
    h = b[:, 3] / s * ah
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = b[:, 4 : 4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2)
    kx = kp[:, :, 0] / s * aw[:, None] + ax[:, None]
    ky = kp[:, :, 1] / s * ah[:, None] + ay[:, None]
    keypoints = np.stack([kx, ky], axis=2)
    return Detections(
        scores[keep].astype(np.float32),
        boxes.astype(np.float32),
        keypoints.astype(np.float32),
    )


def box_iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """IoU of one ``[xmin, ymin, xmax, ymax]`` box with many (``OverlapSimilarity``, IoU)."""
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    out: FloatArray = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)
    return out


def weighted_nms(
    detections: Detections,
    *,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    max_detections: int = -1,
) -> Detections:
    """Weighted non-max suppression (``NonMaxSuppressionCalculator``, ``WEIGHTED``).

    Repeatedly takes the best remaining detection, gathers every remaining one whose
    IoU with it exceeds ``iou_threshold`` (itself included), and outputs the
    score-weighted mean box and keypoints of that cluster with the best score.
    """
    n = len(detections)
    if n == 0:
        return detections
    order = np.argsort(-detections.scores, kind="stable")
    remaining = order
    scores: list[float] = []
    boxes: list[FloatArray] = []
    keypoints: list[FloatArray] = []
    while remaining.size > 0:
        if 0 < max_detections <= len(scores):
            break
        best = remaining[0]
        iou = box_iou(detections.boxes[best], detections.boxes[remaining])
        cluster_mask = iou > iou_threshold
        cluster_mask[0] = True
        cluster = remaining[cluster_mask]
        w = detections.scores[cluster].astype(np.float32)
        total = np.float32(w.sum())
        boxes.append((detections.boxes[cluster] * w[:, None]).sum(axis=0) / total)
        keypoints.append((detections.keypoints[cluster] * w[:, None, None]).sum(axis=0) / total)
        scores.append(float(detections.scores[best]))
        remaining = remaining[~cluster_mask]
    return Detections(
        np.asarray(scores, np.float32),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(keypoints, np.float32).reshape(-1, detections.keypoints.shape[1], 2),
    )


def remove_letterbox(
    detections: Detections, padding: tuple[float, float, float, float]
) -> Detections:
    """Map detections from the letterboxed tensor to the frame
    (``DetectionLetterboxRemovalCalculator``).

    ``padding`` = (left, top, right, bottom) as fractions of the tensor.
    """
    left, top, right, bottom = padding
    sx = 1.0 - left - right
    sy = 1.0 - top - bottom
    offset = np.array([left, top, left, top], np.float32)
    scale = np.array([sx, sy, sx, sy], np.float32)
    boxes = (detections.boxes - offset) / scale
    kp = (detections.keypoints - np.array([left, top], np.float32)) / np.array([sx, sy], np.float32)
    return Detections(detections.scores, boxes.astype(np.float32), kp.astype(np.float32))
