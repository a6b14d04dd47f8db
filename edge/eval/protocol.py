"""The keypoint protocol: how a pipeline is scored on human-annotated keypoint sets.

Protocol (identical for every model pair, int8 and float alike):

1. For each annotated person, crop the image to the annotated person box
   enlarged by ``margin`` (0.1) of its width and height on each side, clipped
   to the image (MPII: the box is ``scale * 200`` px around ``center``).
   Several people per image (crowdpose, ochuman) are thus scored one crop each.
2. Run the pipeline on the crop in static-image mode (a fresh detection per
   crop, no smoothing) asking for up to :data:`NUM_POSES` poses, and map the
   landmarks back to image pixels.
3. The pose whose landmarks lie closest to the annotation (median distance
   over the annotated keypoints) is scored: in crowded crops the detector may
   rank a neighbour first. No pose means every annotated keypoint of that
   person counts as wrong.
4. Score PCK@0.2 and the torso-normalised error with the annotation's torso
   size (:func:`edge.eval.keypoints.annotation_torso_px`), pooled over all
   annotated keypoints of all sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.eval.bodyparts import BODY_PARTS
from edge.eval.keypoints import AnnotatedPerson
from edge.eval.metrics import PartStats, PckScore, pck, torso_errors
from edge.eval.reference import read_image_rgb
from edge.pose.types import PoseResult

#: Extra context around the annotated box, per side, as a fraction of its width / height.
CROP_MARGIN = 0.1
#: Poses the pipeline is asked for per crop (``PoseOptions.num_poses``).
NUM_POSES = 3

#: Runs a pose pipeline on one RGB image (static mode) and returns its result.
PoseFn = Callable[[NDArray[np.uint8]], PoseResult]


def crop_box(
    bbox_xywh_px: tuple[float, float, float, float],
    width: int,
    height: int,
    margin: float = CROP_MARGIN,
) -> tuple[int, int, int, int]:
    """Crop ``(x0, y0, x1, y1)``: the person box grown by ``margin`` per side, clipped."""
    x, y, w, h = bbox_xywh_px
    x0, y0 = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    x1, y1 = min(width, round(x + w + margin * w)), min(height, round(y + h + margin * h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"person box {bbox_xywh_px} lies outside the {width}x{height} image")
    return x0, y0, x1, y1


def pick_pose(
    candidates_xy_px: NDArray[np.float64],
    gt_xy_px: NDArray[np.float64],
    labelled: NDArray[np.bool_],
) -> int:
    """Index of the candidate ``(k, 33, 2)`` closest to the annotation (median distance)."""
    if candidates_xy_px.shape[0] == 1 or not labelled.any():
        return 0
    d = np.linalg.norm(candidates_xy_px[:, labelled] - gt_xy_px[None, labelled], axis=-1)
    return int(np.argmin(np.median(d, axis=1)))


def predict_person(
    person: AnnotatedPerson, image: NDArray[np.uint8], run: PoseFn
) -> NDArray[np.float64]:
    """``(33, 2)`` image-pixel landmarks for one annotated person (NaN when no pose)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop_box(person.bbox_xywh_px, width, height)
    result = run(np.ascontiguousarray(image[y0:y1, x0:x1]))
    if not result.poses:
        return np.full((33, 2), np.nan)
    scale = np.array([float(x1 - x0), float(y1 - y0)])
    cands = np.stack([np.asarray(p.landmarks, np.float64)[:, :2] * scale for p in result.poses])
    cands += np.array([float(x0), float(y0)])
    return np.asarray(cands[pick_pose(cands, person.xy_px, person.labelled)], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class KeypointScore:
    """PCK@0.2 and torso-normalised error of one pipeline on annotated persons."""

    pck: PckScore
    #: Per dataset (``aic``, ``mpii``, ...).
    pck_by_dataset: dict[str, PckScore]
    #: Per body part (only the parts the datasets annotate).
    pck_by_part: dict[str, PckScore]
    error: PartStats
    persons: int
    persons_missed: int


def predict_all(persons: Sequence[AnnotatedPerson], run: PoseFn) -> NDArray[np.float64]:
    """``(N, 33, 2)`` predictions, one per annotated person (each image read once)."""
    out = np.full((len(persons), 33, 2), np.nan)
    images: dict[str, NDArray[np.uint8]] = {}
    for i, person in enumerate(persons):
        key = str(person.image_path)
        if key not in images:
            images = {key: read_image_rgb(person.image_path)}
        out[i] = predict_person(person, images[key], run)
    return out


def score_predictions(
    persons: Sequence[AnnotatedPerson], predictions_xy_px: NDArray[np.float64]
) -> KeypointScore:
    """Score ``(N, 33, 2)`` predictions against the annotations (pure)."""
    gt = np.stack([p.xy_px for p in persons])
    labelled = np.stack([p.labelled for p in persons])
    torso = np.array([p.torso_px for p in persons])
    by_dataset = {}
    for name in sorted({p.dataset for p in persons}):
        sel = np.array([p.dataset == name for p in persons])
        by_dataset[name] = pck(predictions_xy_px[sel], gt[sel], labelled[sel], torso[sel])
    by_part = {}
    for part, idx in BODY_PARTS.items():
        mask = np.zeros_like(labelled)
        mask[:, list(idx)] = True
        if (labelled & mask).any():
            by_part[part] = pck(predictions_xy_px, gt, labelled & mask, torso)
    missed = int((~np.isfinite(predictions_xy_px).any(axis=(1, 2))).sum())
    return KeypointScore(
        pck=pck(predictions_xy_px, gt, labelled, torso),
        pck_by_dataset=by_dataset,
        pck_by_part=by_part,
        error=PartStats.of(torso_errors(predictions_xy_px, gt, labelled, torso)),
        persons=len(persons),
        persons_missed=missed,
    )


def score_keypoints(persons: Sequence[AnnotatedPerson], run: PoseFn) -> KeypointScore:
    """Run the protocol: predict every annotated person and score PCK@0.2 and error."""
    return score_predictions(persons, predict_all(persons, run))
