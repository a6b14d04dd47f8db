"""Cross-layer equalisation (a lever of issue 4, off in the shipped recipe): the
float function must not change, and the rescaled streams must be the residual ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.modelbuild import equalize, flatbuf, prepare


def _crop(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(1, 256, 256, 3)).astype(np.float32)


def test_equalization_keeps_the_float_function(float_models_dir: Path) -> None:
    prepared = prepare.prepare_file(float_models_dir / "pose_landmark_lite.tflite")
    streams = equalize.find_streams(flatbuf.read(prepared))
    # the lite model's five residual streams (16, 24, 40, 56, 96 channels); the
    # 8-channel first block is excluded: its ADD clamps (RELU6), which no
    # per-channel scale commutes with
    assert [s.channels for s in streams] == [16, 24, 40, 56, 96]
    rng = np.random.default_rng(0)
    equalized, summary = equalize.equalize(prepared, [_crop(rng) for _ in range(4)])
    assert len(summary) == 5
    assert min(s.scale_min for s in summary) < 0.9
    assert max(s.scale_max for s in summary) > 1.1
    x = _crop(rng)
    for before, after in zip(
        prepare.run_float(prepared, x), prepare.run_float(equalized, x), strict=True
    ):
        span = float(np.abs(before).max()) or 1.0
        assert float(np.abs(before - after).max()) <= 1e-3 * span
