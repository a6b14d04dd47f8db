"""Where things live on disk: built models, the float-source cache, shared test data.

Nothing here reads the network. The float originals are only needed to *build*
or *compare*; a device runs the committed int8 models from :func:`models_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent

#: Candidate locations of the built models, in order. The first that holds a
#: ``manifest.toml`` wins. ``EDGE_POSE_MODELS_DIR`` overrides all of them.
_MODEL_DIR_CANDIDATES = (
    _PACKAGE_DIR.parent / "models",  # a source checkout or editable install
    Path("/opt/edge-pose/models"),  # the Ansible role's install location
    Path("/usr/share/edge-pose/models"),
)


def models_dir() -> Path:
    """Directory holding the built models and ``manifest.toml``."""
    env = os.environ.get("EDGE_POSE_MODELS_DIR")
    if env:
        return Path(env)
    for candidate in _MODEL_DIR_CANDIDATES:
        if (candidate / "manifest.toml").is_file():
            return candidate
    return _MODEL_DIR_CANDIDATES[0]


def cache_dir() -> Path:
    """Per-user cache (float model sources, calibration crops)."""
    env = os.environ.get("EDGE_POSE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "edge-pose"


def float_models_dir() -> Path:
    """Where ``edge-pose models fetch`` unpacks the float originals."""
    return cache_dir() / "float"


def package_data_dir() -> Path:
    """Files shipped inside the wheel (sample clip, schema)."""
    return _PACKAGE_DIR / "data"
