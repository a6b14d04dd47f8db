"""Model runtime: one factory that builds an interpreter (LiteRT, tflite-runtime fallback).

Vendor runtimes are imported inside :mod:`edge.runtime.backend` only, when a
model is loaded.
"""

from __future__ import annotations

from edge.runtime.model import Model, ModelLoadError, TensorInfo, load_model

__all__ = ["Model", "ModelLoadError", "TensorInfo", "load_model"]
