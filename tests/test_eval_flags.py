"""Pose-flag agreement: known answers, and the crop sets on the real float landmark model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.eval.flags import flag_agreement, grid_boxes, square_crops


def test_flag_agreement_known_answer() -> None:
    cand = np.array([0.9, 0.4, 0.6, 0.1])
    ref = np.array([0.8, 0.6, 0.7, 0.2])
    res = flag_agreement(cand, ref)
    assert res.crops == 4
    assert res.agreement == pytest.approx(0.75)
    assert res.candidate_positive == pytest.approx(0.5)
    assert res.reference_positive == pytest.approx(0.75)
    assert flag_agreement(np.zeros(0), np.zeros(0)).crops == 0
    with pytest.raises(ValueError, match="shape"):
        flag_agreement(np.zeros(2), np.zeros(3))


def test_grid_boxes_and_crops() -> None:
    boxes = grid_boxes(100, 50, [50, 25])
    assert (0, 0, 50, 50) in boxes and (50, 0, 100, 50) in boxes
    assert (72, 24, 97, 49) in boxes  # side 25, step 12
    assert len(boxes) == 3 + 7 * 3
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, 50:] = 200
    crops = square_crops(image, [(50, 0, 100, 50), (0, 0, 50, 50)], size_px=16)
    assert crops.shape == (2, 16, 16, 3)
    assert crops[0].min() == 200 and crops[1].max() == 0


def test_crop_sets_separate_people_from_empty_scenes(
    shared_data: Path, float_models_dir: Path
) -> None:
    from edge.eval.flags import nonperson_crops, person_crops, pose_flags
    from edge.eval.keypoints import load_keypoint_sets

    model = float_models_dir / "pose_landmark_lite.tflite"
    persons = person_crops(load_keypoint_sets(shared_data / "keypoints"), [])
    empty = nonperson_crops(shared_data)
    assert len(persons) == 23 and len(empty) >= 40
    person_flags = pose_flags(model, persons)
    empty_flags = pose_flags(model, empty)
    # measured with the float lite model: 19/23 person crops and 1/61 empty crops at >= 0.5
    assert (person_flags >= 0.5).mean() >= 0.75
    assert (empty_flags >= 0.5).mean() <= 0.05
