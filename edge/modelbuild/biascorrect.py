"""Bias correction of the output heads, measured against the float model.

The int8 network's accumulated error shifts the heads' outputs on average (the
detector's score logits come out ~0.5 low on anchors that matter). For each
head conv (the last conv before a model output), the mean difference float -
int8 of each output channel over calibration samples, restricted to the
elements that matter (``mask``), is folded into that conv's int32 bias.
Classic empirical bias correction, applied only at the heads so it needs one
run of each model; the inner layers are left as quantised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.modelbuild import flatbuf
from edge.modelbuild.recipes import head_tensors

F32 = NDArray[np.float32]
#: mask(float head outputs by conv name, conv name) -> bool array like the conv output (S, HW, C).
MaskFn = Callable[[dict[str, F32], str], NDArray[np.bool_]]

MAX_SAMPLES = 256


@dataclass(frozen=True, slots=True)
class HeadCorrection:
    conv_output: str
    channels: int
    mean_abs_shift: float
    max_abs_shift: float


def head_convs(prepared: bytes, outputs: Sequence[str]) -> list[str]:
    """Output tensor names of the convs that feed ``outputs`` (through reshape/concat/sigmoid)."""
    model = flatbuf.read(prepared)
    sg = model.subgraphs[0]
    producer = flatbuf.producers(model)
    by_name = {flatbuf.tensor_name(t): i for i, t in enumerate(sg.tensors)}
    convs: list[str] = []
    for output in outputs:
        names, logit = head_tensors(prepared, output)
        for name in [*names, *([logit] if logit else [])]:
            pos = producer.get(by_name[name])
            is_conv = pos is not None and flatbuf.op_name(model, sg.operators[pos]) == "CONV_2D"
            if is_conv and name not in convs:
                convs.append(name)
    return convs


def _run_heads(
    model_bytes: bytes, samples: Sequence[F32], names: Sequence[str], quantized: bool
) -> dict[str, F32]:
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(
        model_content=model_bytes, num_threads=2, experimental_preserve_all_tensors=True
    )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    details = {d["name"]: d for d in interp.get_tensor_details()}
    out: dict[str, list[F32]] = {n: [] for n in names}
    for x in samples:
        value: NDArray[Any] = x
        if quantized:
            scale, zero = inp["quantization"]
            value = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], value.reshape(inp["shape"]))
        interp.invoke()
        for n in names:
            d = details[n]
            v = np.asarray(interp.get_tensor(d["index"]))
            if quantized:
                scale, zero = d["quantization"]
                v = (v.astype(np.float32) - np.float32(zero)) * np.float32(scale)
            out[n].append(v.astype(np.float32))
    return {n: np.stack(v) for n, v in out.items()}


def pick_indices(count: int) -> list[int]:
    """At most MAX_SAMPLES indices, evenly spaced over ``count`` samples."""
    if count <= MAX_SAMPLES:
        return list(range(count))
    return [int(i) for i in np.linspace(0, count - 1, MAX_SAMPLES).round()]


def correct_heads(
    int8_bytes: bytes,
    prepared: bytes,
    samples: Sequence[F32],
    outputs: Sequence[str],
    mask: MaskFn,
) -> tuple[bytes, list[HeadCorrection]]:
    """Fold the mean float - int8 error of each head conv's channels into its bias."""
    convs = head_convs(prepared, outputs)
    picked = [samples[i] for i in pick_indices(len(samples))]
    f = _run_heads(prepared, picked, convs, quantized=False)
    q = _run_heads(int8_bytes, picked, convs, quantized=True)
    model = flatbuf.read(int8_bytes)
    sg = model.subgraphs[0]
    by_name = {flatbuf.tensor_name(t): i for i, t in enumerate(sg.tensors)}
    producer = flatbuf.producers(model)
    fixes: list[HeadCorrection] = []
    f_by_conv = {n: v.reshape(len(picked), -1, v.shape[-1]) for n, v in f.items()}
    for name in convs:
        fv = f_by_conv[name]
        qv = q[name].reshape(fv.shape)
        m = mask(f_by_conv, name)
        count = m.sum(axis=(0, 1))
        diff = np.where(m, fv.astype(np.float64) - qv, 0.0).sum(axis=(0, 1))
        delta = np.where(count > 0, diff / np.maximum(count, 1), 0.0)
        op = sg.operators[producer[by_name[name]]]
        _add_to_bias(model, op, delta)
        fixes.append(
            HeadCorrection(
                name, int(fv.shape[-1]), float(np.abs(delta).mean()), float(np.abs(delta).max())
            )
        )
    return flatbuf.to_bytes(model), fixes


def _add_to_bias(model: Any, op: Any, delta: NDArray[np.float64]) -> None:
    index = int(op.inputs[2])
    scale = np.asarray(model.subgraphs[0].tensors[index].quantization.scale, dtype=np.float64)
    bias = flatbuf.constant(model, index, np.int32).astype(np.int64)
    bias = bias + np.round(delta / np.broadcast_to(scale, bias.shape)).astype(np.int64)
    limits = np.iinfo(np.int32)
    flatbuf.overwrite_constant(model, index, np.clip(bias, limits.min, limits.max).astype(np.int32))


def detector_mask(min_logit: float = -4.0) -> MaskFn:
    """Detector heads: only anchors whose float score logit exceeds ``min_logit``.

    Classifier convs have one channel per anchor; the regressor conv with the
    same spatial size has 12 channels per anchor.
    """

    def mask(f: dict[str, F32], name: str) -> NDArray[np.bool_]:
        v = f[name]
        for other, c in f.items():
            if other != name and c.shape[1] == v.shape[1] and c.shape[-1] * 12 == v.shape[-1]:
                # A regressor: its classifier's mask, repeated over the 12 coordinates.
                return np.repeat(c > min_logit, 12, axis=2)
        return v > min_logit

    return mask


def landmark_mask(is_person: NDArray[np.bool_], skip: Sequence[str] = ()) -> MaskFn:
    """Landmark heads: landmark and world coordinates on person crops.

    The pose-flag conv (``skip``) is left alone: its int8 error is noise of +-2
    logits around a mean that depends on which crops one averages over.
    """

    def mask(f: dict[str, F32], name: str) -> NDArray[np.bool_]:
        v = f[name]
        if name in skip:
            return np.zeros(v.shape, dtype=bool)
        return np.broadcast_to(is_person[:, None, None], v.shape).copy()

    return mask
