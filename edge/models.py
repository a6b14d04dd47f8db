"""Which model file serves which role, on a device (int8, committed) or for comparison (float).

Runtime side of the model story: resolving paths and (in
:mod:`edge.modelbuild`) verifying them against ``models/manifest.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from edge import paths

ModelName = Literal["detector", "lite", "full", "heavy"]
Precision = Literal["int8", "float"]

#: MediaPipe's model_complexity -> landmark model name.
COMPLEXITY_NAMES: dict[int, ModelName] = {0: "lite", 1: "full", 2: "heavy"}

_FLOAT_FILES: dict[str, str] = {
    "detector": "pose_detection.tflite",
    "lite": "pose_landmark_lite.tflite",
    "full": "pose_landmark_full.tflite",
    "heavy": "pose_landmark_heavy.tflite",
}


def float_file_name(name: ModelName) -> str:
    return _FLOAT_FILES[name]


def int8_file_name(name: ModelName) -> str:
    stem = _FLOAT_FILES[name].removesuffix(".tflite")
    return f"{stem}_int8.tflite"


def model_path(name: ModelName, precision: Precision, models_dir: Path | None = None) -> Path:
    """Path of a model: int8 from the built models, float from the float-source cache."""
    if precision == "int8":
        return (models_dir or paths.models_dir()) / int8_file_name(name)
    if precision == "float":
        return paths.float_models_dir() / float_file_name(name)
    raise ValueError(f"precision must be 'int8' or 'float', got {precision!r}")
