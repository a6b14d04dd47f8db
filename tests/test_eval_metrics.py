"""Known-answer tests of the pure metrics in edge.eval (synthetic inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.eval.bodyparts import BODY_PARTS, PART_OF_LANDMARK, to_pixels, torso_size_px
from edge.eval.metrics import agreement, pck, torso_errors


def _skeleton(torso_px: float = 100.0) -> np.ndarray:
    """(33, 2) pixel landmarks: shoulders at y=0, hips at y=torso, others spread out."""
    xy = np.zeros((33, 2))
    xy[:, 0] = np.arange(33) * 3.0
    xy[:, 1] = 50.0
    xy[11], xy[12] = (40.0, 0.0), (60.0, 0.0)
    xy[23], xy[24] = (40.0, torso_px), (60.0, torso_px)
    return xy


def test_body_parts_cover_every_landmark_once() -> None:
    flat = sorted(i for idx in BODY_PARTS.values() for i in idx)
    assert flat == list(range(33))
    assert PART_OF_LANDMARK[0] == "face"
    assert PART_OF_LANDMARK[16] == "wrists_hands"
    assert PART_OF_LANDMARK[26] == "elbows_knees"
    assert PART_OF_LANDMARK[32] == "ankles_feet"


def test_torso_size_is_shoulder_mid_to_hip_mid() -> None:
    xy = _skeleton(80.0)
    xy[24] = (60.0, 120.0)  # hips at 80 and 120 -> midpoint y=100
    assert torso_size_px(xy) == pytest.approx(100.0)
    batch = np.stack([_skeleton(10.0), _skeleton(30.0)])
    np.testing.assert_allclose(torso_size_px(batch), [10.0, 30.0])


def test_to_pixels_scales_x_by_width_and_y_by_height() -> None:
    lm = np.zeros((33, 5))
    lm[:, 0], lm[:, 1] = 0.5, 0.25
    px = to_pixels(lm, 200, 400)
    np.testing.assert_allclose(px[0], [100.0, 100.0])


def test_pck_counts_within_threshold_and_missing_as_wrong() -> None:
    gt = np.stack([_skeleton(100.0), _skeleton(50.0), _skeleton(100.0)])
    pred = gt.copy()
    pred[0, 0] += (19.0, 0.0)  # 0.19 torso: correct
    pred[0, 1] += (0.0, 21.0)  # 0.21 torso: wrong
    pred[1, 2] += (12.0, 0.0)  # 0.24 of a 50 px torso: wrong
    pred[2] = np.nan  # missed person: every labelled keypoint wrong
    labelled = np.zeros((3, 33), dtype=bool)
    labelled[:, :10] = True
    torso = torso_size_px(gt)
    score = pck(pred, gt, labelled, torso)
    assert score.total == 30
    assert score.correct == 10 - 1 + 10 - 1 + 0
    assert score.percent == pytest.approx(100.0 * 18 / 30)
    errors = torso_errors(pred, gt, labelled, torso)
    assert errors.size == 20  # the missed person has no error samples
    assert errors.max() == pytest.approx(0.24)


def test_pck_leaves_out_persons_without_torso() -> None:
    gt = np.stack([_skeleton(), _skeleton()])
    labelled = np.ones((2, 33), dtype=bool)
    score = pck(gt.copy(), gt, labelled, np.array([100.0, np.nan]))
    assert (score.correct, score.total, score.persons_without_torso) == (33, 33, 1)


def test_agreement_by_part_and_visibility_filter() -> None:
    frames = 4
    ref = np.stack([_skeleton(100.0)] * frames)
    cand = ref.copy()
    cand[:, 15:23, 0] += 10.0  # wrists/hands off by 0.1 torso
    cand[:, 0, 1] += 50.0  # nose off by 0.5 but the reference does not see it
    vis = np.ones((frames, 33))
    vis[:, 0] = 0.4
    cand[3] = np.nan  # our pipeline lost the last frame
    res = agreement(cand, ref, vis)
    assert res.frames == 4 and res.frames_compared == 3
    assert res.frames_reference_only == 1 and res.frames_candidate_only == 0
    assert res.by_part["wrists_hands"].mean == pytest.approx(0.1)
    assert res.by_part["wrists_hands"].samples == 3 * 8
    assert res.by_part["face"].mean == pytest.approx(0.0)
    assert res.by_part["face"].samples == 3 * 10
    assert res.overall.samples == 3 * 32
    assert res.mean == pytest.approx(0.1 * 8 / 32)
    assert res.p95 == pytest.approx(0.1)


def test_agreement_uses_the_reference_torso_per_frame() -> None:
    ref = np.stack([_skeleton(100.0), _skeleton(200.0)])
    cand = ref + np.array([0.0, 20.0])  # everything 20 px down
    res = agreement(cand, ref, np.ones((2, 33)))
    assert res.by_part["shoulders_hips"].mean == pytest.approx((0.2 + 0.1) / 2)
    assert res.p95 == pytest.approx(0.2)


def test_agreement_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="expected"):
        agreement(np.zeros((2, 33, 2)), np.zeros((3, 33, 2)), np.ones((3, 33)))
