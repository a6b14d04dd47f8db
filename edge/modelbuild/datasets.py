"""Model inputs for calibration and evaluation, made the way the pipeline makes them.

Detector: the letterboxed frame (zero border, [-1, 1]). Landmark models: 256x256
crops (replicate border, [0, 1]) through the ROI the *float* detector gives for
each person (decode, weighted NMS, letterbox removal, detection -> ROI: the
functions of :mod:`edge.pose`), plus random non-person crops away from every
person ROI. Calibration frames are also used mirrored; held-out frames are not.

A float-detector ROI in a held-out frame that a presence annotation marks empty
(nobody in view) is a detector false positive - in the development footage, the
base of a table - not a person crop: it is kept apart and reported on its own,
so "person crops" hold people. Calibration keeps such crops with the person
crops: the pipeline does feed detector false positives to the landmark model, so
their activations belong in the ranges (and the shipped models stay the same).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.modelbuild.frames import Frame
from edge.pose.anchors import generate_anchors
from edge.pose.crop import (
    DETECTOR_RANGE,
    LANDMARK_RANGE,
    crop_into_tensor,
    letterbox_roi,
    make_encoding,
    roi_contains_frame_px,
)
from edge.pose.detection import decode_detections, remove_letterbox, weighted_nms
from edge.pose.roi import detection_to_roi, roi_iou
from edge.pose.types import Roi

DETECTOR_SIZE_PX = 224
LANDMARK_SIZE_PX = 256
#: Persons (best first) cropped per frame.
MAX_PERSONS_PER_FRAME = 3
#: Random non-person crops per frame.
NON_PERSON_PER_FRAME = 1
#: Tracking-style ROI jitter of calibration person crops: centre shift (fraction of
#: the ROI size), scale factor range and rotation (radians), uniform. The mildest
#: amplitude measured (SCOREBOARD rows 18-25: 2.5x this was worse).
JITTER_SHIFT = 0.032
JITTER_SCALE = (0.96, 1.06)
JITTER_ROTATION_RAD = 0.08

Tensor = NDArray[np.float32]
#: Runs the float detector on one (1, 224, 224, 3) tensor -> (boxes (2254, 12), logits (2254, 1)).
DetectorFn = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass(slots=True)
class Samples:
    """Inputs for one split (calibration or held-out)."""

    detector: list[Tensor] = field(default_factory=list)
    person_crops: list[Tensor] = field(default_factory=list)
    non_person_crops: list[Tensor] = field(default_factory=list)
    #: Held-out only: float-detector ROIs in frames annotated empty.
    false_positive_crops: list[Tensor] = field(default_factory=list)

    def landmark_inputs(self) -> tuple[list[Tensor], NDArray[np.bool_]]:
        crops = self.person_crops + self.non_person_crops
        is_person = np.array(
            [True] * len(self.person_crops) + [False] * len(self.non_person_crops), dtype=bool
        )
        return crops, is_person

    def evaluation_inputs(self) -> tuple[list[Tensor], NDArray[np.bool_], NDArray[np.bool_]]:
        """Person, non-person, then false-positive crops; masks of persons and false positives."""
        crops, is_person = self.landmark_inputs()
        extra = len(self.false_positive_crops)
        is_false_positive = np.r_[np.zeros(len(crops), bool), np.ones(extra, bool)]
        return (
            crops + self.false_positive_crops,
            np.r_[is_person, np.zeros(extra, bool)],
            is_false_positive,
        )


def detector_tensor(rgb: NDArray[np.uint8]) -> tuple[Tensor, tuple[float, float, float, float]]:
    h, w = rgb.shape[:2]
    roi, padding = letterbox_roi(w, h, DETECTOR_SIZE_PX, DETECTOR_SIZE_PX)
    tensor = np.zeros((1, DETECTOR_SIZE_PX, DETECTOR_SIZE_PX, 3), np.float32)
    enc = make_encoding(np.dtype(np.float32), DETECTOR_RANGE)
    crop_into_tensor(rgb, roi, tensor, enc, "zero")
    return tensor, padding


def landmark_tensor(rgb: NDArray[np.uint8], roi: Roi) -> Tensor:
    tensor = np.zeros((1, LANDMARK_SIZE_PX, LANDMARK_SIZE_PX, 3), np.float32)
    enc = make_encoding(np.dtype(np.float32), LANDMARK_RANGE)
    crop_into_tensor(rgb, roi, tensor, enc, "replicate")
    return tensor


def person_rois(
    rgb: NDArray[np.uint8],
    tensor: Tensor,
    padding: tuple[float, float, float, float],
    detector: DetectorFn,
    anchors: Tensor,
) -> list[Roi]:
    """ROIs of the persons the float detector finds (best first), as the pipeline makes them."""
    h, w = rgb.shape[:2]
    boxes, logits = detector(tensor)
    dets = weighted_nms(decode_detections(boxes, logits, anchors))
    dets = remove_letterbox(dets, padding)
    return [
        detection_to_roi(dets.keypoints[i], w, h)
        for i in range(min(len(dets), MAX_PERSONS_PER_FRAME))
    ]


def random_non_person_roi(
    rgb: NDArray[np.uint8], persons: Sequence[Roi], rng: np.random.Generator, tries: int = 20
) -> Roi | None:
    """A random rotated square that neither overlaps nor is centred in any person ROI."""
    h, w = rgb.shape[:2]
    short = min(w, h)
    for _ in range(tries):
        size = float(rng.uniform(0.2, 0.6)) * short
        cx = float(rng.uniform(size / 2, w - size / 2))
        cy = float(rng.uniform(size / 2, h - size / 2))
        roi = Roi(cx, cy, size, size, float(rng.uniform(-math.pi / 6, math.pi / 6)))
        if any(roi_contains_frame_px(p, cx, cy) or roi_iou(roi, p) > 0.05 for p in persons):
            continue
        return roi
    return None


def jittered_roi(roi: Roi, rng: np.random.Generator) -> Roi:
    """``roi`` shifted, scaled and turned a little, as tracking from the last frame makes it."""
    size = max(roi.width_px, roi.height_px)
    scale = float(rng.uniform(*JITTER_SCALE))
    return Roi(
        roi.center_x_px + float(rng.uniform(-JITTER_SHIFT, JITTER_SHIFT)) * size,
        roi.center_y_px + float(rng.uniform(-JITTER_SHIFT, JITTER_SHIFT)) * size,
        roi.width_px * scale,
        roi.height_px * scale,
        roi.rotation_rad + float(rng.uniform(-JITTER_ROTATION_RAD, JITTER_ROTATION_RAD)),
    )


def build_samples(
    frames: Sequence[Frame],
    detector: DetectorFn,
    *,
    held_out: bool,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
    person_jitter: int = 0,
    non_person_per_frame: int = NON_PERSON_PER_FRAME,
) -> Samples:
    """Detector tensors, person crops and non-person crops for one split.

    Calibration only (the held-out split never changes): ``person_jitter`` extra
    jittered crops per person and ``non_person_per_frame`` random non-person crops.
    """
    anchors = generate_anchors()
    rng = np.random.default_rng(seed + (1 if held_out else 0))
    jitter_rng = np.random.default_rng(seed + 2)
    if held_out:
        person_jitter, non_person_per_frame = 0, NON_PERSON_PER_FRAME
    out = Samples()
    for frame in frames:
        if frame.held_out != held_out:
            continue
        images = [frame.rgb] if held_out else [frame.rgb, np.ascontiguousarray(frame.rgb[:, ::-1])]
        for rgb in images:
            tensor, padding = detector_tensor(rgb)
            out.detector.append(tensor)
            persons = person_rois(rgb, tensor, padding, detector, anchors)
            crops = [landmark_tensor(rgb, roi) for roi in persons]
            if held_out and frame.person_present is False:
                out.false_positive_crops.extend(crops)
            else:
                out.person_crops.extend(crops)
            out.person_crops.extend(
                landmark_tensor(rgb, jittered_roi(roi, jitter_rng))
                for roi in persons
                for _ in range(person_jitter)
            )
            for _ in range(non_person_per_frame):
                roi = random_non_person_roi(rgb, persons, rng)
                if roi is not None:
                    out.non_person_crops.append(landmark_tensor(rgb, roi))
        if progress is not None:
            progress(1)
    return out
