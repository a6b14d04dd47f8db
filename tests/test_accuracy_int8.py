"""Issue 3 acceptance, int8 path: close to MediaPipe on video, little PCK lost on human keypoints.

PCK@0.2 follows the keypoint protocol of :mod:`edge.eval.protocol` (the same
for int8 and float): a crop around each annotated person, static mode, up to 3
poses, the one closest to the annotation scored; pooled over all sets in
``keypoints/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.eval.keypoints import load_keypoint_sets
from edge.eval.protocol import NUM_POSES, KeypointScore, score_keypoints
from edge.eval.reference import iter_video_rgb
from edge.eval.results import compare_streams, stream_from_results
from edge.models import model_path
from edge.pose import PoseOptions, build_pipeline
from tests.support.reference import LITE_TRACKING, ReferenceCache

pytestmark = pytest.mark.mediapipe

FRAME_INTERVAL_NS = 33_333_000


def _keypoints(shared_data: Path, precision: str) -> KeypointScore:
    options = PoseOptions(
        model_complexity=0, precision=precision, static_image_mode=True, num_poses=NUM_POSES
    )
    pipeline = build_pipeline(options)
    persons = load_keypoint_sets(shared_data / "keypoints")
    return score_keypoints(persons, lambda rgb: pipeline.process(rgb, 0))


def test_int8_models_are_built() -> None:
    for name in ("detector", "lite"):
        assert model_path(name, "int8").is_file(), f"int8 {name} model missing"


@pytest.mark.slow
def test_int8_lite_tracks_dance_close_to_mediapipe(
    shared_data: Path, mediapipe_reference: ReferenceCache
) -> None:
    clip = shared_data / "video" / "dance.mp4"
    reference = mediapipe_reference.stream(clip, LITE_TRACKING)
    pipeline = build_pipeline(PoseOptions(model_complexity=0, precision="int8"))
    results = [
        pipeline.process(rgb, i * FRAME_INTERVAL_NS) for i, rgb in enumerate(iter_video_rgb(clip))
    ]
    agr = compare_streams(stream_from_results(results), reference)
    parts = ", ".join(f"{k} {v.mean:.4f}/{v.p95:.4f}" for k, v in agr.by_part.items())
    message = f"int8 vs MediaPipe lite: mean {agr.mean:.4f}, p95 {agr.p95:.4f}; {parts}"
    assert agr.frames_compared >= 0.98 * agr.frames, message
    # issue 3: <= 0.07 torso (a first int8 build measured 0.067; models/ build 0.055).
    assert agr.mean <= 0.07, message


def test_int8_loses_little_pck_on_human_keypoints(shared_data: Path) -> None:
    float_score = _keypoints(shared_data, "float")
    int8_score = _keypoints(shared_data, "int8")
    message = (
        f"PCK@0.2 pooled over {float_score.pck.total} keypoints: int8 {int8_score.pck.percent:.1f} "
        f"vs float {float_score.pck.percent:.1f}; torso error int8 {int8_score.error.mean:.3f} "
        f"vs float {float_score.error.mean:.3f}"
    )
    # The protocol itself: float lite measured 72.2 (174/241), int8 73.0 (pipeline 4738670).
    # A floor of 68 caught static-mode ghost checks dropping occluded people (65.1).
    assert float_score.pck.total == 241
    assert float_score.pck.percent >= 68.0, message
    # issue 3: int8 loses at most 3.5 points (a first int8 build lost 3.0).
    assert float_score.pck.percent - int8_score.pck.percent <= 3.5, message
