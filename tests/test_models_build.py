"""A tiny end-to-end `edge-pose models build` (a few frames): the real toolchain, bounded time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge import models
from edge.modelbuild import flatbuf, quantize
from edge.modelbuild.build import BuildOptions, build_models
from edge.modelbuild.manifest_io import REPORT_JSON, REPORT_MD


@pytest.mark.slow
def test_tiny_build_of_the_lite_model(
    tmp_path: Path, shared_data: Path, models_dir: Path, float_models_dir: Path
) -> None:
    out = tmp_path / "models"
    out.mkdir()
    shutil.copy(models_dir / models.MANIFEST_NAME, out / models.MANIFEST_NAME)
    shutil.copy(models_dir / models.int8_file_name("detector"), out)
    opts = BuildOptions(
        calibration=(shared_data / "video" / "dance.mp4",),
        out_dir=out,
        roles=("lite",),
        frames_per_video=10,
        float_dir=float_models_dir,
    )
    result = build_models(opts)

    built = out / models.int8_file_name("lite")
    quantize.check_int8(built.read_bytes())
    summary = flatbuf.summarize(flatbuf.read(built))
    assert (
        summary.op_counts()
        == flatbuf.summarize(flatbuf.read(models_dir / models.int8_file_name("lite"))).op_counts()
    )

    manifest = models.read_manifest(out)
    assert manifest.models["lite"].sha256 == models.sha256_file(built)
    # The detector was not rebuilt: its entry is kept because its file is there.
    assert (
        manifest.models["detector"].sha256
        == models.read_manifest(models_dir).models["detector"].sha256
    )
    assert models.verify_models(out) == []
    assert manifest.raw["models"]["lite"]["calibration"]["inputs"] == ["dance.mp4"]

    report = json.loads((out / REPORT_JSON).read_text())
    acc = report["models"]["lite"]["accuracy"]
    assert acc["person_crops"] >= 1
    # Even on 8 calibration frames the int8 model stays near the float one.
    assert acc["mean_px"] < 25.0
    assert set(acc["by_part_px"]) == {
        "face",
        "shoulders_hips",
        "elbows_knees",
        "wrists_hands",
        "ankles_feet",
    }
    assert {"lite_ranges", "lite_quantize", "lite_evaluate"} <= set(result.timings_s)
    assert "Landmarks: lite" in (out / REPORT_MD).read_text()
