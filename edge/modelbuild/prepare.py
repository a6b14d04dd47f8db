"""Step 1 of a build: make a float original quantizable.

MediaPipe's float files store weights as fp16 (the detector's also sparse) behind
DEQUANTIZE / DENSIFY ops and carry no SignatureDef. The quantizer needs constant
fp32 weights and a signature, so :func:`prepare_float_model` bakes the weights
the interpreter computes back in as fp32 constants, drops those ops, adds a
``serving_default`` signature, and :func:`check_bit_exact` proves the result
computes exactly what the original does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.modelbuild import flatbuf

#: Ops that only turn stored constants into fp32 weights.
_WEIGHT_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})


def _interpreter(model_bytes: bytes, preserve_all: bool) -> Any:
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(
        model_content=model_bytes,
        num_threads=1,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=preserve_all,
    )
    interp.allocate_tensors()
    return interp


def prepare_float_model(float_bytes: bytes) -> bytes:
    """fp16/sparse weights -> fp32 constants, weight ops removed, signature added."""
    model = flatbuf.read(float_bytes)
    sg = model.subgraphs[0]
    weight_ops = [
        pos for pos, op in enumerate(sg.operators) if flatbuf.op_name(model, op) in _WEIGHT_OPS
    ]
    # The weight ops' final outputs: read by an op that is not itself a weight op.
    weight_outputs: set[int] = set()
    producer = flatbuf.producers(model)
    for op in sg.operators:
        if flatbuf.op_name(model, op) in _WEIGHT_OPS:
            continue
        for i in op.inputs:
            if i >= 0 and producer.get(int(i)) in weight_ops:
                weight_outputs.add(int(i))
    interp = _interpreter(float_bytes, preserve_all=True)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    interp.invoke()
    for index in sorted(weight_outputs):
        values = np.array(interp.get_tensor(index), dtype=np.float32)
        flatbuf.set_constant(model, index, values)
    flatbuf.remove_ops(model, set(weight_ops))
    flatbuf.add_signature(model)
    flatbuf.compact(model)
    return flatbuf.to_bytes(model)


def run_float(model_bytes: bytes, inputs: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    """Outputs of a float model on one input, reference kernels (no XNNPACK)."""
    interp = _interpreter(model_bytes, preserve_all=False)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], inputs.astype(np.float32).reshape(inp["shape"]))
    interp.invoke()
    return [np.array(interp.get_tensor(d["index"])) for d in interp.get_output_details()]


def check_bit_exact(original: bytes, prepared: bytes, seed: int = 0) -> None:
    """Raise ``AssertionError`` unless both models give identical outputs on random inputs."""
    rng = np.random.default_rng(seed)
    shape = _interpreter(original, preserve_all=False).get_input_details()[0]["shape"]
    for _ in range(2):
        x = rng.uniform(-1.0, 1.0, size=tuple(shape)).astype(np.float32)
        for a, b in zip(run_float(original, x), run_float(prepared, x), strict=True):
            if not np.array_equal(a, b):
                diff = float(np.max(np.abs(a.astype(np.float64) - b)))
                raise AssertionError(
                    f"prepared model differs from the original (max |diff| {diff:g})"
                )


def prepare_file(float_path: Path) -> bytes:
    """Prepare and check one float original; returns the prepared model bytes."""
    original = float_path.read_bytes()
    prepared = prepare_float_model(original)
    check_bit_exact(original, prepared)
    return prepared
