"""`edge-pose process` checks the int8 models against the manifest before it runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge import paths
from edge.cli import main


def test_corrupt_model_exits_65_naming_the_file(
    tmp_path: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = tmp_path / "models"
    shutil.copytree(paths.models_dir(), models)
    lite = models / "pose_landmark_lite_int8.tflite"
    data = bytearray(lite.read_bytes())
    data[1000] ^= 0xFF
    lite.write_bytes(bytes(data))
    monkeypatch.setenv("EDGE_POSE_MODELS_DIR", str(models))
    out = tmp_path / "out.jsonl"

    status = main(["process", str(shared_data / "images" / "yoga-beach.jpg"), "--output", str(out)])

    assert status == 65
    err = capsys.readouterr().err
    assert "pose_landmark_lite_int8.tflite is corrupt" in err
    assert "expected sha256" in err
    assert not out.exists() or out.read_text() == ""
