"""The keypoint protocol's crop, back-projection, pose choice and scoring (synthetic inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.eval.keypoints import AnnotatedPerson
from edge.eval.protocol import crop_box, pick_pose, predict_person, score_predictions
from edge.pose.types import Pose, PoseResult


def _person(dataset: str = "toy", offset: float = 0.0) -> AnnotatedPerson:
    xy = np.full((33, 2), np.nan)
    labelled = np.zeros(33, dtype=bool)
    pts = {11: (40, 20), 12: (60, 20), 23: (40, 70), 24: (60, 70), 0: (50, 10), 15: (30, 50)}
    for i, p in pts.items():
        xy[i] = (p[0] + offset, p[1])
        labelled[i] = True
    return AnnotatedPerson(
        dataset, Path("x.jpg"), xy, labelled, (30.0 + offset, 0.0, 40.0, 80.0), {}
    )


def test_crop_box_grows_by_margin_and_clips() -> None:
    assert crop_box((100, 100, 40, 80), 1000, 1000) == (96, 92, 144, 188)
    assert crop_box((100, 100, 40, 80), 1000, 1000, margin=0.25) == (90, 80, 150, 200)
    assert crop_box((0, 0, 40, 80), 1000, 85) == (0, 0, 44, 85)
    with pytest.raises(ValueError, match="outside"):
        crop_box((2000, 2000, 10, 10), 100, 100)


def test_predict_person_maps_crop_landmarks_back_to_image() -> None:
    person = _person()
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    seen: list[tuple[int, ...]] = []

    def run(crop: np.ndarray) -> PoseResult:
        seen.append(crop.shape)
        lms = np.zeros((33, 5), np.float32)
        lms[:, 0], lms[:, 1] = 0.5, 0.25
        pose = Pose(id=0, score=1.0, landmarks=lms, world=np.zeros((33, 3), np.float32))
        return PoseResult(timestamp_ns=0, width=crop.shape[1], height=crop.shape[0], poses=(pose,))

    xy = predict_person(person, image, run)
    # box (30, 0, 40, 80) grown by 10%: x 26..74, y 0..88 (clipped at the top)
    assert seen == [(88, 48, 3)]
    np.testing.assert_allclose(xy[0], [26.0 + 24.0, 22.0])


def test_pick_pose_prefers_the_annotated_person() -> None:
    person = _person()
    near = np.nan_to_num(person.xy_px, nan=0.0) + 2.0
    far = near + 100.0
    assert pick_pose(np.stack([far, near]), person.xy_px, person.labelled) == 1


def test_score_predictions_pools_and_splits() -> None:
    persons = [_person("a"), _person("b", 200.0)]
    pred = np.stack([p.xy_px for p in persons])
    pred[0, 15] += (20.0, 0.0)  # 0.4 torso: wrong wrist in set a
    pred[1] = np.nan  # person of set b missed
    score = score_predictions(persons, pred)
    assert (score.pck.correct, score.pck.total) == (5, 12)
    assert score.pck_by_dataset["a"].percent == pytest.approx(500 / 6)
    assert score.pck_by_dataset["b"].correct == 0
    assert score.pck_by_part["wrists_hands"].total == 2
    assert score.pck_by_part["shoulders_hips"].correct == 4
    assert "elbows_knees" not in score.pck_by_part
    assert score.persons_missed == 1
    assert score.error.samples == 6
    assert score.error.mean == pytest.approx(0.4 / 6)
