"""A loaded TFLite model: the factory, and tensor I/O with each tensor's own quantisation.

``load_model`` is the one place an interpreter is built. It chooses XNNPACK
(LiteRT's default CPU delegate) or the Coral Edge TPU delegate, sets the number
of threads, and falls back to CPU when told to.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.runtime.backend import Backend, find_backend

logger = logging.getLogger(__name__)

Delegate = Literal["cpu", "edgetpu"]
Fallback = Literal["none", "cpu"]

EDGETPU_LIBRARY = "libedgetpu.so.1"
EDGETPU_INSTALL_HINT = (
    "install Coral's runtime on the device: add Coral's apt repository and "
    "`apt-get install libedgetpu1-std` (the Ansible role does this for hosts in the "
    "'coral' group), plug the accelerator in, and make sure the service user is in the "
    "'plugdev' (USB) or 'apex' (PCIe) group; or set [models] fallback = \"cpu\""
)


class ModelLoadError(RuntimeError):
    """The model or its delegate could not be loaded; the message says what to do."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One input or output tensor, with its affine quantisation (scale 0 = not quantised)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in (np.dtype(np.int8), np.dtype(np.uint8))


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        index=int(detail["index"]),
        name=str(detail["name"]),
        shape=tuple(int(v) for v in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def edgetpu_variant(path: Path) -> Path:
    """``foo.tflite`` -> ``foo_edgetpu.tflite`` (the compiler's naming)."""
    if path.stem.endswith("_edgetpu"):
        return path
    return path.with_name(f"{path.stem}_edgetpu{path.suffix}")


class Model:
    """A thin shell over an interpreter: set inputs, invoke, read outputs.

    Inputs given as float are quantised with the input tensor's own scale and
    zero point; outputs are dequantised the same way (``output``), or read raw
    (``output_raw``). ``input_buffer`` gives a writable view for zero-copy fills.
    """

    def __init__(self, interpreter: Any, path: Path, delegate: Delegate, backend: str) -> None:
        self._interpreter = interpreter
        self.path = path
        self.delegate = delegate
        self.backend = backend
        interpreter.allocate_tensors()
        self.inputs = tuple(_tensor_info(d) for d in interpreter.get_input_details())
        self.outputs = tuple(_tensor_info(d) for d in interpreter.get_output_details())

    def set_input(self, array: NDArray[Any], index: int = 0) -> None:
        """Set input ``index``; float arrays are quantised when the tensor is integer."""
        info = self.inputs[index]
        if info.quantized and array.dtype.kind == "f":
            array = quantize(array, info)
        elif array.dtype != info.dtype:
            array = array.astype(info.dtype)
        self._interpreter.set_tensor(info.index, array.reshape(info.shape))

    def input_buffer(self, index: int = 0) -> NDArray[Any]:
        """A writable numpy view of input ``index``; fill it before :meth:`invoke`.

        Do not hold it across :meth:`invoke` calls (LiteRT's rule for ``tensor()``).
        """
        view: NDArray[Any] = self._interpreter.tensor(self.inputs[index].index)()
        return view

    def invoke(self) -> None:
        self._interpreter.invoke()

    def output_raw(self, index: int) -> NDArray[Any]:
        """Output ``index`` as stored (a copy), without dequantisation."""
        out = np.asarray(self._interpreter.get_tensor(self.outputs[index].index))
        return out

    def output(self, index: int) -> NDArray[np.float32]:
        """Output ``index`` as float32, dequantised with the tensor's own numbers."""
        return dequantize(self.output_raw(index), self.outputs[index])

    def output_by_name(self, name: str) -> NDArray[np.float32]:
        for i, info in enumerate(self.outputs):
            if info.name == name:
                return self.output(i)
        raise KeyError(f"{self.path.name} has no output named {name!r}")


def quantize(array: NDArray[Any], info: TensorInfo) -> NDArray[Any]:
    """float -> int with the tensor's scale and zero point (round half to even, clipped)."""
    limits = np.iinfo(info.dtype)
    q = np.rint(array / info.scale) + info.zero_point
    out: NDArray[Any] = np.clip(q, limits.min, limits.max).astype(info.dtype)
    return out


def dequantize(array: NDArray[Any], info: TensorInfo) -> NDArray[np.float32]:
    """int -> float32, widening before subtracting the zero point."""
    if not info.quantized:
        return np.asarray(array, dtype=np.float32)
    widened = array.astype(np.int32) - np.int32(info.zero_point)
    return (widened * np.float32(info.scale)).astype(np.float32)


def load_model(
    path: Path | str,
    *,
    num_threads: int = 1,
    delegate: Delegate = "cpu",
    fallback: Fallback = "none",
    edgetpu_device: str | None = None,
    use_xnnpack: bool = True,
    backend: str = "auto",
) -> Model:
    """Build a :class:`Model` for ``path``.

    ``delegate="edgetpu"`` loads ``libedgetpu.so.1`` through ``load_delegate`` and
    uses the ``*_edgetpu.tflite`` variant of the model. If that fails, it raises
    :class:`ModelLoadError` with install instructions, or (``fallback="cpu"``)
    logs one warning and loads ``path`` on the CPU.
    """
    path = Path(path)
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    be = find_backend(backend)
    if delegate == "edgetpu":
        try:
            return _load_edgetpu(be, path, num_threads, edgetpu_device)
        except ModelLoadError as exc:
            if fallback != "cpu":
                raise
            logger.warning("Edge TPU unavailable, running %s on the CPU: %s", path.name, exc)
    elif delegate != "cpu":
        raise ValueError(f"delegate must be 'cpu' or 'edgetpu', got {delegate!r}")
    if not path.is_file():
        raise ModelLoadError(
            f"model file {path} not found; run `edge-pose models verify` to see which "
            "models are missing and how to restore them"
        )
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": num_threads}
    if not use_xnnpack and be.no_default_delegates is not None:
        kwargs["experimental_op_resolver_type"] = be.no_default_delegates
    try:
        interpreter = be.interpreter_cls(**kwargs)
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load {path}: {exc}") from exc
    return Model(interpreter, path, "cpu", be.name)


def _load_edgetpu(be: Backend, path: Path, num_threads: int, device: str | None) -> Model:
    tpu_path = edgetpu_variant(path)
    try:
        # Probe first: LiteRT's Delegate prints a spurious traceback from __del__
        # when the library is missing.
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load the Edge TPU delegate {EDGETPU_LIBRARY} ({exc}); {EDGETPU_INSTALL_HINT}"
        ) from exc
    options = {"device": device} if device else {}
    try:
        tpu = be.load_delegate(EDGETPU_LIBRARY, options)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ModelLoadError(
            f"cannot load the Edge TPU delegate {EDGETPU_LIBRARY} ({exc}); {EDGETPU_INSTALL_HINT}"
        ) from exc
    if not tpu_path.is_file():
        raise ModelLoadError(
            f"no Edge TPU build of {path.name}: expected {tpu_path}; compile it with "
            "`edge-pose models compile-edgetpu` on a machine with edgetpu_compiler"
        )
    try:
        interpreter = be.interpreter_cls(
            model_path=str(tpu_path), experimental_delegates=[tpu], num_threads=num_threads
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load {tpu_path} on the Edge TPU: {exc}") from exc
    return Model(interpreter, tpu_path, "edgetpu", be.name)
