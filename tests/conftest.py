"""Shared fixtures: where the real data, the built models and the float originals are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge import paths

pytest_plugins = ["tests.support.reference", "tests.support.mosquitto"]
REPO = Path(__file__).resolve().parent.parent
#: Real footage and human-annotated keypoints, kept outside the project.
SHARED_DATA = Path(os.environ.get("EDGE_POSE_SHARED_DATA", REPO.parent / "shared" / "data"))
MEDIAPIPE_PYTHON = REPO / ".venv-mediapipe" / "bin" / "python"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set EDGE_POSE_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return paths.models_dir()


@pytest.fixture(scope="session")
def float_models_dir() -> Path:
    """The float originals, fetched by `scripts/setup --dev` (`edge-pose models fetch`)."""
    d = paths.float_models_dir()
    if not (d / "pose_landmark_lite.tflite").is_file():
        pytest.fail(f"float models missing in {d}: run `edge-pose models fetch`")
    return d


@pytest.fixture(scope="session")
def mediapipe_python() -> Path:
    """The interpreter of the MediaPipe reference venv (mediapipe==0.10.14)."""
    if not MEDIAPIPE_PYTHON.is_file():
        pytest.fail(f"{MEDIAPIPE_PYTHON} missing: run `scripts/setup --dev`")
    return MEDIAPIPE_PYTHON


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--soak-frames N`: frames the soak tests feed the daemon (0: the CI size)."""
    parser.addoption("--soak-frames", type=int, default=0, help="soak length in frames")
