"""Accuracy of an int8 model against its float original (pure numpy over model outputs).

Detector: per frame, the top score (sigmoid of the best logit) of each model and
the box centre of the float model's best anchor as each model regresses it (in
pixels of the 224 input). Landmarks: 33 body landmarks in 256-crop pixels,
grouped by body part; world landmarks in cm; the pose flag (> 0.5) on person and
non-person crops, and on their own on detector false positives (float-detector
ROIs in frames annotated empty), which are neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: 33 body landmarks grouped as the report shows them (MediaPipe's indices).
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "face": tuple(range(11)),
    "shoulders_hips": (11, 12, 23, 24),
    "elbows_knees": (13, 14, 25, 26),
    "wrists_hands": (15, 16, 17, 18, 19, 20, 21, 22),
    "ankles_feet": (27, 28, 29, 30, 31, 32),
}

POSE_FLAG_THRESHOLD = 0.5
DETECTION_THRESHOLD = 0.5

Array = NDArray[np.float32]


def _sigmoid(x: NDArray[Any]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100, 100)))
    return out


@dataclass(frozen=True, slots=True)
class DetectorAccuracy:
    frames: int
    frames_with_person: int
    top_score_abs_diff_mean: float
    top_score_abs_diff_max: float
    box_center_px_mean: float
    box_center_px_max: float
    detection_agreement: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detector_accuracy(
    float_boxes: Array, float_logits: Array, int8_boxes: Array, int8_logits: Array
) -> DetectorAccuracy:
    """Inputs stacked over frames: boxes (N, 2254, 12), logits (N, 2254, 1)."""
    fs = _sigmoid(float_logits[..., 0])
    qs = _sigmoid(int8_logits[..., 0])
    top_f = fs.max(axis=1)
    top_q = qs.max(axis=1)
    score_diff = np.abs(top_f - top_q)
    best = fs.argmax(axis=1)
    rows = np.arange(len(best))
    centre_f = float_boxes[rows, best, :2].astype(np.float64)
    centre_q = int8_boxes[rows, best, :2].astype(np.float64)
    person = top_f > DETECTION_THRESHOLD
    dist = np.linalg.norm(centre_f - centre_q, axis=1)[person]
    agree = np.mean((top_f > DETECTION_THRESHOLD) == (top_q > DETECTION_THRESHOLD))
    return DetectorAccuracy(
        frames=len(top_f),
        frames_with_person=int(person.sum()),
        top_score_abs_diff_mean=float(score_diff.mean()),
        top_score_abs_diff_max=float(score_diff.max()),
        box_center_px_mean=float(dist.mean()) if dist.size else 0.0,
        box_center_px_max=float(dist.max()) if dist.size else 0.0,
        detection_agreement=float(agree),
    )


@dataclass(frozen=True, slots=True)
class LandmarkAccuracy:
    person_crops: int
    non_person_crops: int
    mean_px: float
    by_part_px: dict[str, float]
    world_cm: float
    flag_agreement_person: float
    flag_agreement_non_person: float
    flag_abs_diff_mean: float
    #: Detector false positives: crops, and how many each model calls a person.
    false_positive_crops: int = 0
    false_positive_float_says_person: int = 0
    false_positive_int8_says_person: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def landmark_accuracy(
    *,
    float_landmarks: Array,
    float_world: Array,
    float_flag: Array,
    int8_landmarks: Array,
    int8_world: Array,
    int8_flag: Array,
    is_person: NDArray[np.bool_],
    is_false_positive: NDArray[np.bool_] | None = None,
) -> LandmarkAccuracy:
    """Inputs stacked over crops: landmarks (N, 195), world (N, 117), flag (N, 1).

    Landmark and world errors are measured on the person crops only. Crops marked
    ``is_false_positive`` (must not be marked ``is_person``) count as neither person
    nor non-person crops; their flags are counted on their own.
    """
    false_positive = (
        np.zeros(len(is_person), bool) if is_false_positive is None else is_false_positive
    )
    if np.any(false_positive & is_person):
        raise ValueError("a crop cannot be both a person crop and a detector false positive")
    lf = float_landmarks.reshape(len(float_landmarks), 39, 5)[is_person, :33, :2]
    lq = int8_landmarks.reshape(len(int8_landmarks), 39, 5)[is_person, :33, :2]
    err = np.linalg.norm(lf.astype(np.float64) - lq, axis=2)  # (P, 33) px
    wf = float_world.reshape(len(float_world), 39, 3)[is_person, :33]
    wq = int8_world.reshape(len(int8_world), 39, 3)[is_person, :33]
    world_cm = np.linalg.norm(wf.astype(np.float64) - wq, axis=2) * 100.0
    ff = float_flag.reshape(-1) > POSE_FLAG_THRESHOLD
    fq = int8_flag.reshape(-1) > POSE_FLAG_THRESHOLD
    agree = ff == fq
    non_person = ~is_person & ~false_positive
    return LandmarkAccuracy(
        person_crops=int(is_person.sum()),
        non_person_crops=int(non_person.sum()),
        mean_px=float(err.mean()) if err.size else 0.0,
        by_part_px={
            part: float(err[:, list(idx)].mean()) if err.size else 0.0
            for part, idx in BODY_PARTS.items()
        },
        world_cm=float(world_cm.mean()) if world_cm.size else 0.0,
        flag_agreement_person=float(agree[is_person].mean()) if is_person.any() else 1.0,
        flag_agreement_non_person=float(agree[non_person].mean()) if non_person.any() else 1.0,
        flag_abs_diff_mean=float(
            np.abs(float_flag.reshape(-1).astype(np.float64) - int8_flag.reshape(-1)).mean()
        ),
        false_positive_crops=int(false_positive.sum()),
        false_positive_float_says_person=int(ff[false_positive].sum()),
        false_positive_int8_says_person=int(fq[false_positive].sum()),
    )
