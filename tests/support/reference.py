"""MediaPipe reference output for accuracy tests, computed once per test session.

Loaded as a pytest plugin from ``tests/conftest.py``. The fixture
``mediapipe_reference`` runs ``bench/mediapipe_ref.py --serve`` in the
MediaPipe venv on frames decoded here (the same pixels our pipeline gets) and
caches each (input, options) answer for the rest of the session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.eval.reference import (
    ReferenceFrame,
    ReferenceOptions,
    iter_video_rgb,
    read_image_rgb,
    run_reference,
)
from edge.eval.results import Stream, stream_from_records

#: MediaPipe's legacy defaults with the lite model, tracking and smoothing on.
LITE_TRACKING = ReferenceOptions(model_complexity=0)


class ReferenceCache:
    """MediaPipe's legacy pose solution on files, memoised per session."""

    def __init__(self, python: Path, float_models_dir: Path) -> None:
        self._python = python
        self._float_models_dir = float_models_dir
        self._cache: dict[tuple[str, ReferenceOptions], list[ReferenceFrame]] = {}
        #: How many times the MediaPipe subprocess was started (tests may check caching).
        self.runs = 0

    def frames(self, path: Path, options: ReferenceOptions = LITE_TRACKING) -> list[ReferenceFrame]:
        """Per-frame answers for a video, or a one-element list for an image."""
        key = (str(Path(path).resolve()), options)
        if key not in self._cache:
            is_image = Path(path).suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"}
            frames = iter([read_image_rgb(path)]) if is_image else iter_video_rgb(path)
            self.runs += 1
            self._cache[key] = run_reference(
                self._python, frames, options, Path(path).name, self._float_models_dir
            )
        return self._cache[key]

    def stream(self, path: Path, options: ReferenceOptions = LITE_TRACKING) -> Stream:
        return stream_from_records([f.record for f in self.frames(path, options)])


@pytest.fixture(scope="session")
def mediapipe_reference(mediapipe_python: Path, float_models_dir: Path) -> ReferenceCache:
    return ReferenceCache(mediapipe_python, float_models_dir)


def expected_stream(path: Path, width: int, height: int, model: str | None = None) -> Stream:
    """An ``*.expected.json`` file as a one-frame stream (all landmarks visible)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    lm = np.zeros((1, 33, 5))
    lm[..., 3:] = 1.0
    if model is None:
        lm[0, :, :2] = np.asarray(data["landmarks_px_xy_33"], dtype=np.float64) / [width, height]
    else:
        lm[0, :, :3] = np.asarray(data["landmarks"][model], dtype=np.float64)
    return Stream(lm, np.array([width]), np.array([height]))
