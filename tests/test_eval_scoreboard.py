"""The scoreboard and `models evaluate`: float scored as a candidate equals float."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edge.eval.cli import register_evaluate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-pose models")
    register_evaluate(parser.add_subparsers(dest="action"))
    return parser


@pytest.mark.slow
def test_evaluate_float_against_itself(
    shared_data: Path, float_models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md, js = tmp_path / "board.md", tmp_path / "board.json"
    args = _parser().parse_args(
        [
            "evaluate",
            "--detector",
            str(float_models_dir / "pose_detection.tflite"),
            "--landmark",
            str(float_models_dir / "pose_landmark_lite.tflite"),
            "--name",
            "float as candidate",
            "--data",
            str(shared_data),
            "--sets",
            "mpii",
            "--max-frames",
            "24",
            "--threads",
            "1",
            "--invokes",
            "3",
            "--markdown",
            str(md),
            "--json",
            str(js),
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("### float as candidate")
    assert md.read_text().strip() == out.strip()
    board = json.loads(js.read_text())
    # Same model files on both sides: equal up to run-to-run noise of the runtime.
    assert abs(board["pck_delta"]) <= 1.0
    assert board["keypoints"]["pck"]["total"] == 56  # the labelled joints of mpii/
    assert board["pck_float_percent"] >= 85.0  # float lite measured 91.1 on mpii/
    dance = board["agreement"]["dance.mp4"]
    assert dance["frames"] == 24 and dance["frames_compared"] == 24
    assert dance["overall"]["mean"] <= 1e-4
    assert set(dance["by_part"]) == {
        "face",
        "shoulders_hips",
        "elbows_knees",
        "wrists_hands",
        "ankles_feet",
    }
    assert board["flags_person"]["agreement"] >= 0.98
    assert board["flags_person"]["crops"] == 5 + 3  # 5 mpii persons, frames 0, 8, 16
    assert board["flags_nonperson"]["reference_positive"] <= 0.05
    assert [(lat["model"], lat["threads"]) for lat in board["latency"]] == [
        ("landmark", 1),
        ("detector", 1),
    ]
    assert all(lat["candidate_ms"] > 0 and lat["float_ms"] > 0 for lat in board["latency"])
    for header in (
        "| PCK@0.2 pooled",
        "| wrists_hands |",
        "| non-person crops |",
        "| landmark | 1 |",
    ):
        assert header in out


def test_evaluate_rejects_unknown_sets(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["evaluate", "--sets", "mpii,coco"])
    assert args.func(args) == 64
    assert "unknown coco" in capsys.readouterr().err


def test_evaluate_names_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.tflite"
    args = _parser().parse_args(
        ["evaluate", "--landmark", str(missing), "--detector", str(missing)]
    )
    assert args.func(args) == 66
    assert str(missing) in capsys.readouterr().err
