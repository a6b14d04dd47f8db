"""Step 3 of a build: quantise a prepared float model to a fully int8 graph.

ai-edge-quantizer's ``static_wi8_ai8`` recipe (per-channel symmetric int8
weights, per-tensor asymmetric int8 activations) does the work, with activation
ranges we choose (:mod:`edge.modelbuild.ranges`). Afterwards:

* DEPTH_TO_SPACE, which the quantizer leaves float between DEQUANTIZE and
  QUANTIZE, becomes one int8 op (exact: a pure data move with equal ranges);
* :func:`check_int8` proves every op and every I/O tensor is int8 (or, for a
  mixed-precision recipe, every op but its float island).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge.modelbuild import flatbuf
from edge.modelbuild.ranges import to_qsvs

RECIPE_NAME = "static_wi8_ai8"

#: Ops that move data without changing values: their output range must be their input's.
_DATA_MOVES = frozenset({"DEPTH_TO_SPACE", "RESHAPE", "PAD", "MAX_POOL_2D"})

#: Types allowed for activations in a "fully int8" graph. INT32 only appears as
#: constant operands (biases, shapes, paddings), which the check skips.
_INT8 = "INT8"
_FLOAT32 = "FLOAT32"
#: Ops a mixed-precision build has at the edges of its float islands.
_ISLAND_EDGES = frozenset({"DEQUANTIZE", "QUANTIZE"})


class NotInt8Error(AssertionError):
    """A built model still has a non-int8 op or I/O tensor."""


def tie_data_move_ranges(
    prepared: bytes, ranges: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """Copy each data-move op's input range to its output (in graph order)."""
    model = flatbuf.read(prepared)
    sg = model.subgraphs[0]
    out = dict(ranges)
    for op in sg.operators:
        if flatbuf.op_name(model, op) not in _DATA_MOVES:
            continue
        src = flatbuf.tensor_name(sg.tensors[int(op.inputs[0])])
        dst = flatbuf.tensor_name(sg.tensors[int(op.outputs[0])])
        if src in out:
            out[dst] = out[src]
    return out


def input_output_names(prepared: bytes) -> tuple[list[str], list[str]]:
    model = flatbuf.read(prepared)
    sg = model.subgraphs[0]
    return (
        [flatbuf.tensor_name(sg.tensors[i]) for i in sg.inputs],
        [flatbuf.tensor_name(sg.tensors[i]) for i in sg.outputs],
    )


def op_scopes(prepared: bytes, positions: Sequence[int]) -> list[str]:
    """The quantiser's scope of each op (its output tensor names, ``;``-joined and ended)."""
    model = flatbuf.read(prepared)
    sg = model.subgraphs[0]
    scopes = []
    for pos in positions:
        if not 0 <= pos < len(sg.operators):
            raise ValueError(f"no op at position {pos} (the graph has {len(sg.operators)})")
        names = [flatbuf.tensor_name(sg.tensors[int(i)]) for i in sg.operators[pos].outputs]
        scopes.append(";".join(names) + ";")
    return scopes


def quantize_int8(
    prepared: bytes,
    ranges: Mapping[str, tuple[float, float]],
    template_sample: np.ndarray[Any, Any],
    float_ops: Sequence[int] = (),
) -> bytes:
    """Quantise ``prepared`` with ``ranges``; returns the post-processed int8 model.

    ``float_ops`` (positions in ``prepared``) stay float: a mixed-precision model.
    """
    from ai_edge_quantizer import quantizer, recipe

    rules = recipe.static_wi8_ai8()
    rules += [
        {
            "regex": f"^{re.escape(scope)}$",
            "operation": "*",
            "algorithm_key": "no_quantize",
            "op_config": {},
        }
        for scope in op_scopes(prepared, float_ops)
    ]
    q = quantizer.Quantizer(bytearray(prepared), rules)
    in_names, _ = input_output_names(prepared)
    # One quantizer calibration step gives the QSV layout; we replace its values.
    template = q.calibrate(
        {"serving_default": [{in_names[0]: template_sample.astype(np.float32)}]}, num_threads=2
    )
    qsvs = to_qsvs(ranges, template)
    result = q.quantize(qsvs, enable_progress_bar=False, enable_progress_report=False)
    return postprocess(bytes(result.quantized_model))


def _q_params(tensor: Any) -> tuple[tuple[float, ...], tuple[int, ...]]:
    q = tensor.quantization
    if q is None or q.scale is None:
        return (), ()
    return tuple(float(s) for s in q.scale), tuple(int(z) for z in q.zeroPoint)


def rewrite_depth_to_space(model: flatbuf.ModelT) -> int:
    """DEQUANTIZE -> DEPTH_TO_SPACE -> QUANTIZE  =>  DEPTH_TO_SPACE (int8). Returns the count."""
    sg = model.subgraphs[0]
    producer = flatbuf.producers(model)
    readers = flatbuf.consumers(model)
    drop: set[int] = set()
    count = 0
    for op in sg.operators:
        if flatbuf.op_name(model, op) != "DEPTH_TO_SPACE":
            continue
        src = int(op.inputs[0])
        dst = int(op.outputs[0])
        deq_pos = producer.get(src)
        quant_pos = readers.get(dst, [])
        if deq_pos is None or flatbuf.op_name(model, sg.operators[deq_pos]) != "DEQUANTIZE":
            continue
        if len(quant_pos) != 1 or flatbuf.op_name(model, sg.operators[quant_pos[0]]) != "QUANTIZE":
            continue
        if len(readers.get(src, [])) != 1:
            continue
        int8_in = int(sg.operators[deq_pos].inputs[0])
        int8_out = int(sg.operators[quant_pos[0]].outputs[0])
        if _q_params(sg.tensors[int8_in]) != _q_params(sg.tensors[int8_out]):
            raise NotInt8Error(
                "DEPTH_TO_SPACE input and output ranges differ; tie them before quantising"
            )
        op.inputs = np.array([int8_in], dtype=np.int32)
        op.outputs = np.array([int8_out], dtype=np.int32)
        drop |= {deq_pos, quant_pos[0]}
        count += 1
    flatbuf.remove_ops(model, drop)
    return count


def postprocess(quantized: bytes) -> bytes:
    model = flatbuf.read(quantized)
    rewrite_depth_to_space(model)
    flatbuf.compact(model)
    return flatbuf.to_bytes(model)


def check_int8(model_bytes: bytes, float_ops: int = 0) -> flatbuf.GraphSummary:
    """Raise :class:`NotInt8Error` unless every I/O tensor and every op's activations are
    int8 - except, in a mixed-precision build, exactly ``float_ops`` float32 ops with the
    DEQUANTIZE/QUANTIZE ops at their edges."""
    summary = flatbuf.summarize(flatbuf.read(model_bytes))
    allowed = [{_INT8}, {_FLOAT32}] if float_ops else [{_INT8}]
    edges = _ISLAND_EDGES if float_ops else frozenset()
    compute = [op for op in summary.ops if op.name not in edges]
    problems = [
        f"{op.name} ({', '.join(op.activation_types)})"
        for op in compute
        if set(op.activation_types) not in allowed
    ]
    problems += [
        f"{kind} {t.name} is {t.type_name}"
        for kind, tensors in (("input", summary.inputs), ("output", summary.outputs))
        for t in tensors
        if t.type_name != _INT8
    ]
    floats = sum(set(op.activation_types) == {_FLOAT32} for op in compute)
    if float_ops and floats != float_ops:
        problems.append(f"{floats} float ops (want {float_ops})")
    if problems:
        raise NotInt8Error("not fully int8: " + "; ".join(problems))
    return summary
