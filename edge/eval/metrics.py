"""Pure accuracy metrics over numpy arrays, all normalised by torso size.

Conventions: pixel coordinates ``(N, 33, 2)`` (convert normalised landmarks with
:func:`edge.eval.bodyparts.to_pixels` first: a normalised distance is not
isotropic on a non-square frame); a missing pose is a row of NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.eval.bodyparts import BODY_PARTS, torso_size_px

#: PCK threshold as a fraction of the torso size.
PCK_THRESHOLD = 0.2
#: Reference landmarks with visibility at or below this are not compared.
MIN_REFERENCE_VISIBILITY = 0.5


@dataclass(frozen=True, slots=True)
class PckScore:
    """Percentage of correct keypoints: within ``threshold`` x torso size of the annotation."""

    correct: int
    total: int
    #: Annotated persons left out because no torso size could be derived.
    persons_without_torso: int
    threshold: float = PCK_THRESHOLD

    @property
    def percent(self) -> float:
        return 100.0 * self.correct / self.total if self.total else float("nan")


def _distances_over_torso(
    pred_xy_px: NDArray[np.floating], gt_xy_px: NDArray[np.floating], torso_px: NDArray[np.floating]
) -> NDArray[np.float64]:
    pred = np.asarray(pred_xy_px, dtype=np.float64)
    gt = np.asarray(gt_xy_px, dtype=np.float64)
    torso = np.asarray(torso_px, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"expected two (N, K, 2) arrays, got {pred.shape} and {gt.shape}")
    if torso.shape != pred.shape[:1]:
        raise ValueError(f"torso sizes must be shape ({pred.shape[0]},), got {torso.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        result: NDArray[np.float64] = np.linalg.norm(pred - gt, axis=-1) / torso[:, None]
    return result


def _valid_torso(torso_px: NDArray[np.floating]) -> NDArray[np.bool_]:
    torso = np.asarray(torso_px, dtype=np.float64)
    return np.isfinite(torso) & (torso > 0)


def pck(
    pred_xy_px: NDArray[np.floating],
    gt_xy_px: NDArray[np.floating],
    labelled: NDArray[np.bool_],
    torso_px: NDArray[np.floating],
    threshold: float = PCK_THRESHOLD,
) -> PckScore:
    """PCK over annotated keypoints of persons with a torso size.

    A keypoint that is annotated but not predicted (NaN, e.g. a missed person)
    counts as wrong; persons whose torso size is NaN or 0 are left out.
    """
    dist = _distances_over_torso(pred_xy_px, gt_xy_px, torso_px)
    has_torso = _valid_torso(torso_px)
    mask = np.asarray(labelled, dtype=bool) & has_torso[:, None]
    correct = mask & np.isfinite(dist) & (dist <= threshold)
    return PckScore(
        correct=int(correct.sum()),
        total=int(mask.sum()),
        persons_without_torso=int((~has_torso).sum()),
        threshold=threshold,
    )


def torso_errors(
    pred_xy_px: NDArray[np.floating],
    gt_xy_px: NDArray[np.floating],
    labelled: NDArray[np.bool_],
    torso_px: NDArray[np.floating],
) -> NDArray[np.float64]:
    """Distances over torso size of annotated *and* predicted keypoints (flat array)."""
    dist = _distances_over_torso(pred_xy_px, gt_xy_px, torso_px)
    mask = np.asarray(labelled, dtype=bool) & _valid_torso(torso_px)[:, None] & np.isfinite(dist)
    result: NDArray[np.float64] = dist[mask]
    return result


@dataclass(frozen=True, slots=True)
class PartStats:
    """Distance over torso size for one group of landmarks."""

    mean: float
    p95: float
    samples: int

    @staticmethod
    def of(values: NDArray[np.float64]) -> PartStats:
        if values.size == 0:
            return PartStats(mean=float("nan"), p95=float("nan"), samples=0)
        return PartStats(
            mean=float(values.mean()),
            p95=float(np.percentile(values, 95)),
            samples=int(values.size),
        )


@dataclass(frozen=True, slots=True)
class Agreement:
    """How close one result stream is to a reference stream, frame by frame."""

    overall: PartStats
    by_part: dict[str, PartStats]
    frames: int
    #: Frames where both streams have a pose (the only ones with distances).
    frames_compared: int
    #: Frames where only the reference has a pose.
    frames_reference_only: int
    #: Frames where only the stream under test has a pose.
    frames_candidate_only: int

    @property
    def mean(self) -> float:
        return self.overall.mean

    @property
    def p95(self) -> float:
        return self.overall.p95


def agreement(
    candidate_xy_px: NDArray[np.floating],
    reference_xy_px: NDArray[np.floating],
    reference_visibility: NDArray[np.floating],
    min_visibility: float = MIN_REFERENCE_VISIBILITY,
) -> Agreement:
    """Landmark distance between two streams over the reference's torso size.

    ``candidate_xy_px`` and ``reference_xy_px`` are ``(F, 33, 2)`` pixel
    coordinates of the same frames, NaN where a stream has no pose;
    ``reference_visibility`` is ``(F, 33)``. Only landmarks the reference sees
    with visibility > ``min_visibility`` count; the torso size of each frame is
    the reference's shoulder-midpoint to hip-midpoint distance. Means and p95
    are pooled over all compared landmark samples.
    """
    cand = np.asarray(candidate_xy_px, dtype=np.float64)
    ref = np.asarray(reference_xy_px, dtype=np.float64)
    vis = np.asarray(reference_visibility, dtype=np.float64)
    if cand.shape != ref.shape or cand.shape[1:] != (33, 2) or vis.shape != ref.shape[:2]:
        raise ValueError(
            f"expected (F, 33, 2), (F, 33, 2), (F, 33); got {cand.shape}, {ref.shape}, {vis.shape}"
        )
    ref_has: NDArray[np.bool_] = np.asarray(np.isfinite(ref).all(axis=(1, 2)))
    cand_has: NDArray[np.bool_] = np.asarray(np.isfinite(cand).all(axis=(1, 2)))
    both = ref_has & cand_has
    torso = torso_size_px(ref)
    dist = _distances_over_torso(cand, ref, np.where(both, torso, np.nan))
    with np.errstate(invalid="ignore"):
        mask = both[:, None] & (vis > min_visibility) & np.isfinite(dist)
    by_part = {
        part: PartStats.of(dist[:, list(idx)][mask[:, list(idx)]])
        for part, idx in BODY_PARTS.items()
    }
    return Agreement(
        overall=PartStats.of(dist[mask]),
        by_part=by_part,
        frames=int(ref.shape[0]),
        frames_compared=int(both.sum()),
        frames_reference_only=int((ref_has & ~cand_has).sum()),
        frames_candidate_only=int((cand_has & ~ref_has).sum()),
    )
