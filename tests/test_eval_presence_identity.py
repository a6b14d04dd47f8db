"""Known-answer tests of presence-interval and id-stability scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.eval.identity import TrackedFrame, id_stability, match_nearest, torso_centres_px
from edge.eval.presence import frame_presence, presence_score, read_intervals


def test_presence_recall_after_grace_and_ghosts_outside_margin() -> None:
    flags = np.zeros(100, dtype=bool)
    flags[23:61] = True  # interval [20, 60]: picked up 3 frames late, lost on the last frame
    flags[64] = True  # within 5 frames after the end: neither ghost nor miss
    flags[90:95] = True  # ghost
    score = presence_score(flags, [(20, 60)])
    inside = 60 - 25 + 1
    assert score.frames_inside == inside
    assert score.recall == pytest.approx(1.0)
    outside = 100 - (65 - 15 + 1)
    assert score.frames_outside == outside
    assert score.ghost_rate == pytest.approx(5 / outside)
    assert score.pickup_delay_frames == (3,)


def test_presence_counts_a_missed_interval() -> None:
    flags = np.zeros(50, dtype=bool)
    flags[10:20] = True
    score = presence_score(flags, [(10, 19), (30, 45)])
    assert score.pickup_delay_frames == (0, None)
    assert score.recall == pytest.approx(5 / (5 + 11))
    assert score.ghost_rate == 0.0
    tolerant = presence_score(flags, [(10, 19), (30, 45)], end_tolerance_frames=3)
    assert tolerant.frames_inside == 2 + 8
    assert tolerant.recall == pytest.approx(2 / 10)


def test_frame_presence_is_unsure_near_the_approximate_boundaries() -> None:
    intervals = [(61, 199), (228, 446)]
    assert frame_presence(61, intervals) is True
    assert frame_presence(199, intervals) is True
    assert frame_presence(55, intervals) is False  # 6 frames before the first start
    assert frame_presence(56, intervals) is None  # within the 5-frame margin
    assert frame_presence(204, intervals) is None
    assert frame_presence(205, intervals) is False
    assert frame_presence(222, intervals) is False
    assert frame_presence(223, intervals) is None
    assert frame_presence(499, intervals) is False
    assert frame_presence(450, intervals, margin_frames=0) is False


def test_read_intervals_beside_the_clip(tmp_path: Path, shared_data: Path) -> None:
    clip = shared_data / "video" / "one-by-one-enter-leave.mp4"
    assert read_intervals(clip) == [(61, 199), (228, 446)]
    assert read_intervals(shared_data / "video" / "dance.mp4") is None
    (tmp_path / "x.presence.json").write_text('{"present_intervals_frames": [[1, 2]]}')
    assert read_intervals(tmp_path / "x.mp4") == [(1, 2)]


def _frame(ids: list[int], xs: list[float]) -> TrackedFrame:
    return TrackedFrame(
        ids=np.array(ids, dtype=np.int64),
        centres_px=np.array([[x, 100.0] for x in xs], dtype=np.float64).reshape(-1, 2),
    )


def test_id_stability_detects_a_swap_and_a_new_id() -> None:
    frames = [
        _frame([1, 2, 3], [100, 300, 500]),
        _frame([1, 2, 3], [105, 305, 495]),
        _frame([2, 1, 3], [108, 310, 490]),  # ids 1 and 2 swapped
        _frame([2, 1, 3], [110, 312, 488]),
        _frame([2, 1, 7], [112, 315, 485]),  # track 3 re-created as 7
        _frame([2, 1], [112, 315]),
        _frame([], []),
        _frame([2, 1], [113, 316]),
    ]
    res = id_stability(frames, expected_count=3)
    assert res.transitions == 6  # all but the first and the empty frame
    assert res.switch_transitions == 2
    assert res.stable_fraction == pytest.approx(4 / 6)
    assert res.frames_with_expected_count == 5
    assert res.distinct_ids == 4


def test_id_stability_sees_a_track_recreated_after_a_gap() -> None:
    frames = [
        _frame([1, 2], [100, 300]),
        _frame([1], [101]),  # track 2 lost for two frames
        _frame([1], [102]),
        _frame([1, 5], [103, 302]),  # ... and back under a new id
        _frame([1, 5], [104, 303]),
    ]
    res = id_stability(frames, expected_count=2)
    assert (res.transitions, res.switch_transitions) == (4, 1)
    assert res.distinct_ids == 3
    # a newcomer far from every known id is not a switch when gated
    gated = id_stability(frames, gate_px=50.0)
    assert gated.switch_transitions == 1
    far = [*frames[:3], _frame([1, 5], [103, 900])]
    assert id_stability(far, gate_px=50.0).switch_transitions == 0
    # beyond the memory, a returning person under a new id is a newcomer
    assert id_stability(frames, memory_frames=1).switch_transitions == 0


def test_match_nearest_respects_gate_and_one_to_one() -> None:
    a = np.array([[0.0, 0.0], [10.0, 0.0]])
    b = np.array([[9.0, 0.0], [100.0, 0.0]])
    assert match_nearest(a, b, gate_px=20.0) == [(1, 0)]
    assert sorted(match_nearest(a, b, gate_px=1000.0)) == [(0, 1), (1, 0)]


def test_torso_centres() -> None:
    xy = np.zeros((1, 33, 2))
    xy[0, [11, 12, 23, 24]] = [[0, 0], [10, 0], [0, 20], [10, 20]]
    np.testing.assert_allclose(torso_centres_px(xy), [[5.0, 10.0]])
