"""Find an interpreter implementation: ai-edge-litert first, tflite-runtime as a fallback.

The two packages expose the same ``Interpreter``/``load_delegate`` API. Only this
module imports them.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

_warned_fallback = False


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    interpreter_cls: Any
    load_delegate: Any
    #: ``experimental_op_resolver_type`` value that keeps XNNPACK off, or None.
    no_default_delegates: Any


class BackendMissingError(RuntimeError):
    """Neither ai-edge-litert nor tflite-runtime is importable."""


def find_backend(preferred: str = "auto") -> Backend:
    """Return the interpreter backend (``auto``, ``ai_edge_litert`` or ``tflite_runtime``)."""
    global _warned_fallback
    if preferred in ("auto", "ai_edge_litert"):
        try:
            from ai_edge_litert import interpreter as litert
        except ImportError:
            if preferred == "ai_edge_litert":
                raise BackendMissingError(
                    "ai-edge-litert is not installed: pip install ai-edge-litert"
                ) from None
        else:
            return Backend(
                "ai_edge_litert",
                litert.Interpreter,
                litert.load_delegate,
                litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
    try:
        from tflite_runtime import interpreter as tfl
    except ImportError:
        raise BackendMissingError(
            "no TFLite runtime found: install ai-edge-litert (pip install ai-edge-litert)"
        ) from None
    if not _warned_fallback:
        _warned_fallback = True
        if platform.machine() in ("x86_64", "AMD64"):
            logger.warning(
                "using tflite-runtime instead of ai-edge-litert: tflite-runtime 2.14 runs int8 "
                "models without XNNPACK on x86, about 10x slower; pip install ai-edge-litert"
            )
        else:
            logger.warning("using tflite-runtime fallback; ai-edge-litert is preferred")
    resolver = getattr(tfl, "OpResolverType", None)
    no_default = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES if resolver is not None else None
    return Backend("tflite_runtime", tfl.Interpreter, tfl.load_delegate, no_default)
