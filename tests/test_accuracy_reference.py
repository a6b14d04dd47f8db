"""The MediaPipe reference runner reproduces MediaPipe's published expected outputs.

This pins the measuring stick itself: if the reference runner or the torso
metric drifts, the pipeline's acceptance numbers would be meaningless.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.eval.reference import ReferenceOptions
from edge.eval.results import Stream, compare_streams
from tests.support.reference import ReferenceCache

pytestmark = pytest.mark.mediapipe


def expected_stream(path: Path, width: int, height: int, model: str | None = None) -> Stream:
    """An ``*.expected.json`` file as a one-frame stream (all landmarks visible)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    lm = np.zeros((1, 33, 5))
    lm[..., 3:] = 1.0
    if model is None:
        lm[0, :, :2] = np.asarray(data["landmarks_px_xy_33"], dtype=np.float64) / [width, height]
    else:
        lm[0, :, :3] = np.asarray(data["landmarks"][model], dtype=np.float64)
    return Stream(lm, np.array([width]), np.array([height]))


def test_reference_matches_yoga_expected(
    shared_data: Path, mediapipe_reference: ReferenceCache
) -> None:
    image = shared_data / "images" / "yoga-beach.jpg"
    opts = ReferenceOptions(model_complexity=0, static_image_mode=True)
    ref = mediapipe_reference.stream(image, opts)
    assert ref.has_pose.tolist() == [True]
    got = compare_streams(ref, expected_stream(image.with_suffix(".expected.json"), 1000, 667))
    # MediaPipe lite measured 0.0231 against this file (issue 3 quotes 0.023).
    assert got.mean == pytest.approx(0.023, abs=0.003)
    runs = mediapipe_reference.runs
    mediapipe_reference.stream(image, opts)
    assert mediapipe_reference.runs == runs  # cached for the session
    record = mediapipe_reference.frames(image, opts)[0].record
    vis_presence = np.asarray(record["poses"][0]["landmarks"])[:, 3:]
    assert (vis_presence > 0.9).mean() > 0.9  # presence is kept (the legacy API clears it)


def test_reference_full_matches_seated_expected(
    shared_data: Path, mediapipe_reference: ReferenceCache
) -> None:
    image = shared_data / "images" / "seated.jpg"
    opts = ReferenceOptions(model_complexity=1, static_image_mode=True)
    ref = mediapipe_reference.stream(image, opts)
    exp = expected_stream(
        image.with_suffix(".expected.json"), int(ref.width[0]), int(ref.height[0]), "full"
    )
    got = compare_streams(ref, exp)
    assert got.mean == pytest.approx(0.013, abs=0.003)  # issue 3: MediaPipe full 0.013
