"""Issue 3 acceptance: the float pipeline is faithful to MediaPipe, the int8 path close to it.

Distances are over the reference's torso size (shoulder midpoint to hip
midpoint, pixels), over landmarks the reference sees with visibility > 0.5
(see :mod:`edge.eval.metrics`). MediaPipe's output comes from the
session-cached fixture in ``tests/support/reference.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.eval.reference import iter_video_rgb, read_image_rgb
from edge.eval.results import compare_streams, stream_from_results
from edge.pose import PoseOptions, PoseResult, build_pipeline
from tests.support.reference import LITE_TRACKING, ReferenceCache, expected_stream

pytestmark = pytest.mark.mediapipe

#: MediaPipe's legacy solution stamps video frames 33,333 us apart.
FRAME_INTERVAL_NS = 33_333_000


def _track(options: PoseOptions, clip: Path) -> list[PoseResult]:
    pipeline = build_pipeline(options)
    return [
        pipeline.process(rgb, i * FRAME_INTERVAL_NS) for i, rgb in enumerate(iter_video_rgb(clip))
    ]


def _describe(label: str, agr: object) -> str:
    from edge.eval.metrics import Agreement

    assert isinstance(agr, Agreement)
    parts = ", ".join(f"{k} {v.mean:.4f}/{v.p95:.4f}" for k, v in agr.by_part.items())
    return (
        f"{label}: mean {agr.mean:.4f}, p95 {agr.p95:.4f} torso over {agr.frames_compared}/"
        f"{agr.frames} frames (ref-only {agr.frames_reference_only}, ours-only "
        f"{agr.frames_candidate_only}); by part mean/p95: {parts}"
    )


@pytest.mark.slow
def test_float_lite_tracks_dance_like_mediapipe(
    shared_data: Path, mediapipe_reference: ReferenceCache
) -> None:
    clip = shared_data / "video" / "dance.mp4"
    reference = mediapipe_reference.stream(clip, LITE_TRACKING)
    ours = stream_from_results(_track(PoseOptions(model_complexity=0, precision="float"), clip))
    agr = compare_streams(ours, reference)
    message = _describe("float lite vs MediaPipe lite, dance.mp4", agr)
    assert agr.frames_compared >= 0.98 * agr.frames, message
    # issue 3: <= 0.01 torso (a faithful re-implementation reaches about 0.002);
    # measured 0.0042 when this test was written.
    assert agr.mean <= 0.01, message


def test_float_lite_on_yoga_matches_expected(shared_data: Path) -> None:
    image = shared_data / "images" / "yoga-beach.jpg"
    rgb = read_image_rgb(image)
    pipeline = build_pipeline(
        PoseOptions(model_complexity=0, precision="float", static_image_mode=True)
    )
    ours = stream_from_results([pipeline.process(rgb, 0)])
    agr = compare_streams(
        ours, expected_stream(image.with_suffix(".expected.json"), rgb.shape[1], rgb.shape[0])
    )
    # issue 3: <= 0.03 (MediaPipe's own lite: 0.023); measured 0.0233.
    assert agr.frames_compared == 1
    assert agr.mean <= 0.03, _describe("float lite vs yoga-beach.expected.json", agr)


def test_float_full_on_seated_matches_expected(shared_data: Path) -> None:
    image = shared_data / "images" / "seated.jpg"
    rgb = read_image_rgb(image)
    pipeline = build_pipeline(
        PoseOptions(model_complexity=1, precision="float", static_image_mode=True)
    )
    ours = stream_from_results([pipeline.process(rgb, 0)])
    exp = expected_stream(image.with_suffix(".expected.json"), rgb.shape[1], rgb.shape[0], "full")
    agr = compare_streams(ours, exp)
    # issue 3: <= 0.02 of the *full* entries (MediaPipe full: 0.013); measured 0.0174.
    assert agr.frames_compared == 1
    assert agr.mean <= 0.02, _describe("float full vs seated.expected.json (full)", agr)
