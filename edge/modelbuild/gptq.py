"""Weight rounding learned against the float model (GPTQ) for CONV_2D / DEPTHWISE_CONV_2D.

Round-to-nearest int8 weights alone cost BlazePose most of its int8 error (the
float model with only its weights rounded is already ~5 px off in the 256 crop),
so after quantisation each conv's int8 weights are re-chosen, keeping the
quantizer's per-channel scales: weights are rounded one input column at a time
and the rounding error is pushed onto the columns not yet rounded, weighted by
the inverse Hessian ``H = X^T X`` of the layer's float inputs (Frantar et al.,
"GPTQ", 2022; the Optimal Brain Surgeon update). ``X`` are input patches sampled
from the calibration run of the float model. Pure numpy; deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.modelbuild import flatbuf

#: Output positions sampled per calibration sample and layer, and samples used.
POSITIONS_PER_SAMPLE = 32
MAX_SAMPLES = 128
#: Diagonal damping, as a fraction of the mean diagonal of H.
DAMPING = 0.01
_CONVS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"})
_VALID = 1  # schema Padding.VALID

F32 = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ConvSpec:
    kind: str
    input_name: str
    output_name: str
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    valid: bool
    in_channels: int
    out_h: int
    out_w: int


def conv_specs(model_bytes: bytes) -> list[ConvSpec]:
    model = flatbuf.read(model_bytes)
    sg = model.subgraphs[0]
    out = []
    for op in sg.operators:
        kind = flatbuf.op_name(model, op)
        if kind not in _CONVS:
            continue
        o = op.builtinOptions
        if int(o.dilationHFactor) != 1 or int(o.dilationWFactor) != 1:
            continue
        if kind == "DEPTHWISE_CONV_2D" and int(o.depthMultiplier) not in (0, 1):
            continue
        x = sg.tensors[int(op.inputs[0])]
        w = sg.tensors[int(op.inputs[1])]
        y = sg.tensors[int(op.outputs[0])]
        out.append(
            ConvSpec(
                kind=kind,
                input_name=flatbuf.tensor_name(x),
                output_name=flatbuf.tensor_name(y),
                kernel_h=int(w.shape[1]),
                kernel_w=int(w.shape[2]),
                stride_h=int(o.strideH),
                stride_w=int(o.strideW),
                valid=int(o.padding) == _VALID,
                in_channels=int(x.shape[3]),
                out_h=int(y.shape[1]),
                out_w=int(y.shape[2]),
            )
        )
    return out


def _patches(x: F32, spec: ConvSpec, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> F32:
    """Input patches (P, kh, kw, C) at output positions (rows, cols), TF padding rules."""
    img: F32 = x.reshape(tuple(int(v) for v in x.shape[-3:]))
    h, w = int(img.shape[0]), int(img.shape[1])
    if spec.valid:
        top = left = 0
    else:
        pad_h = max((spec.out_h - 1) * spec.stride_h + spec.kernel_h - h, 0)
        pad_w = max((spec.out_w - 1) * spec.stride_w + spec.kernel_w - w, 0)
        top, left = pad_h // 2, pad_w // 2
        img = np.pad(img, ((top, pad_h - top), (left, pad_w - left), (0, 0)))
    dy = np.arange(spec.kernel_h)
    dx = np.arange(spec.kernel_w)
    ys = rows[:, None] * spec.stride_h + dy[None, :]  # (P, kh)
    xs = cols[:, None] * spec.stride_w + dx[None, :]  # (P, kw)
    patches: F32 = img[ys[:, :, None], xs[:, None, :], :]
    return patches


@dataclass(slots=True)
class HessianCollector:
    """Gathers input patches of every conv from float calibration runs."""

    specs: list[ConvSpec]
    seed: int = 0
    samples_seen: int = 0
    _rows: dict[str, list[F32]] = field(default_factory=dict)
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def observe(self, tensor: Callable[[str], F32]) -> None:
        if self.samples_seen >= MAX_SAMPLES:
            return
        self.samples_seen += 1
        for spec in self.specs:
            n = spec.out_h * spec.out_w
            pick = self._rng.integers(0, n, size=min(n, POSITIONS_PER_SAMPLE))
            order = np.sort(pick)
            rows, cols = order // spec.out_w, order % spec.out_w
            p = _patches(tensor(spec.input_name), spec, rows, cols)
            self._rows.setdefault(spec.output_name, []).append(p.astype(np.float32))

    def patches(self, output_name: str) -> F32:
        return np.concatenate(self._rows[output_name])


def gptq_round(
    w: NDArray[np.float64], scale: NDArray[np.float64], h: NDArray[np.float64]
) -> NDArray[np.int8]:
    """int8 codes for ``w`` (Cout, K) with per-row ``scale`` (Cout,) and Hessian ``h`` (K, K)."""
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    k = h.shape[0]
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += np.eye(k) * DAMPING * float(np.mean(np.diag(h)))
    # Act order: round the columns with the largest curvature first.
    order = np.argsort(-np.diag(h), kind="stable")
    w = w[:, order]
    h = h[np.ix_(order, order)]
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T  # upper
    s = scale[:, None]
    codes = np.zeros_like(w)
    for i in range(k):
        col = w[:, i]
        q = np.clip(np.round(col / s[:, 0]), -127, 127)
        codes[:, i] = q
        err = (col - q * s[:, 0]) / hinv[i, i]
        w[:, i + 1 :] -= np.outer(err, hinv[i, i + 1 :])
    out = np.empty_like(codes)
    out[:, order] = codes
    return out.astype(np.int8)


def gptq_round_depthwise(
    w: NDArray[np.float64], scale: NDArray[np.float64], h: NDArray[np.float64]
) -> NDArray[np.int8]:
    """Per-channel GPTQ: ``w`` (C, K), ``scale`` (C,), ``h`` (C, K, K)."""
    k = w.shape[1]
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    diag = np.einsum("ckk->ck", h)
    mean = diag.mean(axis=1, keepdims=True)
    mean[mean <= 0] = 1.0
    h += np.eye(k)[None] * (DAMPING * mean)[:, :, None]
    hinv = np.transpose(np.linalg.cholesky(np.linalg.inv(h)), (0, 2, 1))  # upper, per channel
    codes = np.zeros_like(w)
    for i in range(k):
        q = np.clip(np.round(w[:, i] / scale), -127, 127)
        codes[:, i] = q
        err = (w[:, i] - q * scale) / hinv[:, i, i]
        w[:, i + 1 :] -= err[:, None] * hinv[:, i, i + 1 :]
    return codes.astype(np.int8)


def _weight_array(model: Any, tensor: Any, dtype: type) -> NDArray[Any]:
    data = bytes(model.buffers[tensor.buffer].data)
    return np.frombuffer(data, dtype=dtype).reshape(tuple(int(s) for s in tensor.shape))


def apply_gptq(
    int8_bytes: bytes, prepared: bytes, collector: HessianCollector
) -> tuple[bytes, int]:
    """Re-round the int8 conv weights of ``int8_bytes``; returns (model, convs changed)."""
    fmodel = flatbuf.read(prepared)
    fsg = fmodel.subgraphs[0]
    float_weights: dict[str, NDArray[np.float32]] = {}
    for op in fsg.operators:
        if flatbuf.op_name(fmodel, op) in _CONVS:
            name = flatbuf.tensor_name(fsg.tensors[int(op.outputs[0])])
            float_weights[name] = _weight_array(fmodel, fsg.tensors[int(op.inputs[1])], np.float32)
    model = flatbuf.read(int8_bytes)
    sg = model.subgraphs[0]
    int8_code = flatbuf.tensor_type_code("INT8")
    changed = 0
    specs = {s.output_name: s for s in collector.specs}
    for op in sg.operators:
        kind = flatbuf.op_name(model, op)
        if kind not in _CONVS:
            continue
        name = flatbuf.tensor_name(sg.tensors[int(op.outputs[0])])
        wt = sg.tensors[int(op.inputs[1])]
        if name not in specs or name not in float_weights or wt.type != int8_code:
            continue
        scale = np.asarray(wt.quantization.scale, dtype=np.float64)
        wf = float_weights[name].astype(np.float64)
        x = collector.patches(name)  # (N, kh, kw, C) float32
        if kind == "CONV_2D":
            cout = wf.shape[0]
            w2 = wf.reshape(cout, -1)
            xm = x.reshape(len(x), -1)
            h = (xm.T @ xm).astype(np.float64) / len(xm)
            codes = gptq_round(w2, np.broadcast_to(scale, (cout,)), h).reshape(wf.shape)
        else:
            c = wf.shape[3]
            w2 = wf.reshape(-1, c).T  # (C, kh*kw)
            xm = np.ascontiguousarray(x.reshape(len(x), -1, c).transpose(2, 1, 0))  # (C, K, N)
            h = np.matmul(xm, xm.transpose(0, 2, 1)).astype(np.float64) / x.shape[0]
            codes = gptq_round_depthwise(w2, np.broadcast_to(scale, (c,)), h).T.reshape(wf.shape)
        model.buffers[wt.buffer].data = np.frombuffer(codes.astype(np.int8).tobytes(), np.uint8)
        changed += 1
    return flatbuf.to_bytes(model), changed
