"""Issue 3 acceptance against human annotation: pick-up on entry, no ghosts after people leave.

``one-by-one-enter-leave.presence.json`` lists the frame intervals with a person
present (+-3 frames). Scored with :func:`edge.eval.presence.presence_score`:
recall inside the intervals after a 5-frame pick-up allowance, ghost rate on
frames more than 5 frames outside every interval. MediaPipe's legacy lite
solution reports a ghost on 61% of those frames (measured with
``bench/mediapipe_ref.py``: 75/122).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.eval.presence import presence_score, read_intervals
from edge.eval.reference import iter_video_rgb
from edge.pose import PoseOptions, build_pipeline

#: The clip runs at 10 fps; real timestamps drive the filters.
FRAME_INTERVAL_NS = 100_000_000


#: Recall inside the intervals: issue 3 asks >= 0.98 of the product's pipeline (int8,
#: the default: measured 343/348 = 0.9856). The float path misses one frame more
#: (341/348 = 0.9799, MediaPipe's own lite solution: also 0.9799): at frame 195 the
#: float landmark model's own pose flag falls below 0.5 while the person is half out
#: of the frame, and the detector cannot see the rest; its bound catches regressions.
MIN_RECALL = {"int8": 0.98, "float": 0.975}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "float"])
def test_lite_presence_on_enter_leave_clip(shared_data: Path, precision: str) -> None:
    clip = shared_data / "video" / "one-by-one-enter-leave.mp4"
    intervals = read_intervals(clip)
    assert intervals
    pipeline = build_pipeline(PoseOptions(model_complexity=0, precision=precision))
    has_pose = np.array(
        [
            bool(pipeline.process(rgb, i * FRAME_INTERVAL_NS).poses)
            for i, rgb in enumerate(iter_video_rgb(clip))
        ]
    )
    assert has_pose.size == 500
    score = presence_score(has_pose, intervals)
    message = repr(score)
    # issue 3: each entry picked up within 5 frames of the annotated start (measured 5 and 1)
    assert all(d is not None and d <= 5 for d in score.pickup_delay_frames), message
    # issue 3: a pose on at most 5% of the frames > 5 frames outside (measured 0/122)
    assert score.ghost_rate <= 0.05, message
    assert score.recall >= MIN_RECALL[precision], message
