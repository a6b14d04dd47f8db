"""Keypoint-set loaders: synthetic files with known answers, plus the real development sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.eval.keypoints import (
    annotation_torso_px,
    load_coco,
    load_keypoint_sets,
    load_mpii,
    normalise_joint_name,
)


def test_joint_names_normalise() -> None:
    assert normalise_joint_name("Right Shoulder") == "right_shoulder"
    assert normalise_joint_name("Head top") == "head_top"


def test_coco_loader_maps_by_name_and_skips_unlabelled(tmp_path: Path) -> None:
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "neck", "Left Wrist"]
    kps = [10, 0, 2, 30, 0, 1, 10, 40, 2, 30, 40, 2, 20, -2, 2, 0, 0, 0]
    data = {
        "categories": [{"id": 1, "name": "person", "keypoints": names}],
        "images": [{"id": 7, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [
            {"image_id": 7, "bbox": [1, 2, 3, 4], "keypoints": kps, "num_keypoints": 5},
            {"image_id": 7, "bbox": [0, 0, 1, 1], "keypoints": [0] * 18, "num_keypoints": 0},
        ],
    }
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    (person,) = load_coco(path, "toy")
    assert person.image_path == tmp_path / "a.jpg"
    assert person.bbox_xywh_px == (1.0, 2.0, 3.0, 4.0)
    assert person.labelled.sum() == 4
    np.testing.assert_allclose(person.xy_px[12], [30.0, 0.0])  # right_shoulder
    assert not person.labelled[15] and np.isnan(person.xy_px[15]).all()  # unlabelled wrist
    assert person.extra_px == {"neck": (20.0, -2.0)}
    assert person.torso_px == pytest.approx(40.0)


def test_torso_fallbacks() -> None:
    xy = np.full((33, 2), np.nan)
    labelled = np.zeros(33, dtype=bool)
    xy[11], xy[23] = (0.0, 0.0), (0.0, 30.0)  # left side only
    labelled[[11, 23]] = True
    assert annotation_torso_px(xy, labelled, {}) == pytest.approx(30.0)
    xy[24] = (10.0, 30.0)
    labelled[24] = True  # both hips, one shoulder: neck stands in for the shoulder centre
    assert annotation_torso_px(xy, labelled, {"neck": (5.0, -10.0)}) == pytest.approx(40.0)
    assert np.isnan(annotation_torso_px(xy[:, :] * np.nan, np.zeros(33, dtype=bool), {}))


def test_mpii_loader(tmp_path: Path) -> None:
    joints = [[float(i), float(2 * i)] for i in range(1, 17)]
    joints[15] = [-1.0, -1.0]  # left wrist not annotated
    item = {
        "image": "m.jpg",
        "joints": joints,
        "joints_vis": [1] * 16,
        "center": [100, 50],
        "scale": 1.0,
    }
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps([item]))
    (person,) = load_mpii(path)
    assert person.bbox_xywh_px == (0.0, -50.0, 200.0, 200.0)
    np.testing.assert_allclose(person.xy_px[28], [1.0, 2.0])  # right_ankle is joint 0
    assert not person.labelled[15]
    assert set(person.extra_px) == {"pelvis", "thorax", "upper_neck", "head_top"}


def test_development_sets_load(shared_data: Path) -> None:
    persons = load_keypoint_sets(shared_data / "keypoints")
    assert len(persons) == 23
    assert sum(int(p.labelled.sum()) for p in persons) == 251
    assert {p.dataset for p in persons} == {"aic", "crowdpose", "mpii", "ochuman"}
    assert all(p.image_path.is_file() for p in persons)
    assert sum(1 for p in persons if np.isnan(p.torso_px)) == 2
