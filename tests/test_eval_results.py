"""Result streams from JSON Lines records and PoseResult objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.eval.results import compare_streams, read_jsonl, stream_from_records, stream_from_results
from edge.pose.types import Pose, PoseResult


def _landmarks(shift: float = 0.0) -> np.ndarray:
    lm = np.zeros((33, 5), dtype=np.float32)
    lm[:, 0] = 0.5 + shift
    lm[:, 1] = 0.5
    lm[[11, 12], 1] = 0.3
    lm[[23, 24], 1] = 0.7
    lm[:, 3:] = 1.0
    return lm


def _record(frame: int, lm: np.ndarray | None) -> dict[str, object]:
    poses = (
        []
        if lm is None
        else [{"id": 0, "score": 1.0, "landmarks": lm.tolist(), "world": [[0, 0, 0]] * 33}]
    )
    return {
        "v": 1,
        "frame": frame,
        "ts_ms": 0.0,
        "source": "x",
        "width": 200,
        "height": 100,
        "poses": poses,
    }


def test_records_and_results_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        "\n".join(json.dumps(_record(i, _landmarks() if i else None)) for i in range(3)) + "\n"
    )
    ref = stream_from_records(read_jsonl(path))
    assert ref.frames == 3
    assert ref.has_pose.tolist() == [False, True, True]
    results = [
        PoseResult(
            timestamp_ns=i,
            width=200,
            height=100,
            poses=(
                Pose(
                    id=0, score=1.0, landmarks=_landmarks(0.02), world=np.zeros((33, 3), np.float32)
                ),
            ),
        )
        for i in range(3)
    ]
    ours = stream_from_results(results)
    res = compare_streams(ours, ref)
    # 0.02 of 200 px = 4 px; torso = 0.4 of 100 px = 40 px -> 0.1
    assert res.frames_compared == 2 and res.frames_candidate_only == 1
    assert res.mean == pytest.approx(0.1, rel=1e-5)
    with pytest.raises(ValueError, match="length"):
        compare_streams(stream_from_results(results[:2]), ref)
