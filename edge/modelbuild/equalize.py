"""Cross-layer equalisation of a prepared float model (before quantisation).

int8 activations have one scale per tensor, weights one scale per output channel.
In BlazePose's residual streams a few channels carry large values while others
stay small, and the 1x1 convs that read the stream give the small channels large
weights: at int8 the small channels are a few steps wide and the large weights
turn a one-step rounding flip into tens of output steps (measured on the lite
model's second block: one input step moved the next conv's output by up to 111
steps).

Scaling channel ``c`` of such a stream by ``1/s_c`` and the weights that read it by
``s_c`` leaves the float function unchanged (every op on the way is linear per
channel), and is free for whatever writes the stream (per-channel weight scales
absorb it). Here a *stream* is a set of tensors joined by channel-wise linear ops
(ADD, PAD, RESIZE_BILINEAR, MAX_POOL_2D), written only by convolutions without
a clamping activation and read only by convolutions; ``s_c`` follows Nagel et al.
(2019): ``sqrt(activation range / weight range)`` per channel, so that both end
up at the geometric mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.modelbuild import flatbuf

_CONVS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"})
_CHANNEL_LINEAR = frozenset({"ADD", "PAD", "RESIZE_BILINEAR", "MAX_POOL_2D"})
#: Fused activations that commute with a positive per-channel scale (NONE, RELU).
_HOMOGENEOUS_ACTIVATIONS = frozenset({0, 1})
#: Bound on any one channel's scale factor.
MAX_SCALE = 16.0


@dataclass(frozen=True, slots=True)
class Stream:
    tensors: tuple[int, ...]
    producers: tuple[int, ...]  # op positions writing into the stream (convs)
    consumers: tuple[int, ...]  # op positions reading it (convs)
    channels: int


@dataclass(frozen=True, slots=True)
class StreamScaling:
    """One equalised stream, for the build report."""

    first_tensor: str
    channels: int
    scale_min: float
    scale_max: float


def _activation(op: Any) -> int:
    return int(flatbuf._options(op).get("fusedActivationFunction", 0))


def find_streams(model: flatbuf.ModelT) -> list[Stream]:
    """Every stream of the graph that can be rescaled per channel."""
    sg = model.subgraphs[0]
    names = [flatbuf.op_name(model, op) for op in sg.operators]
    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.setdefault(t, t) != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    for pos, op in enumerate(sg.operators):
        if names[pos] in _CHANNEL_LINEAR:
            data = [int(op.inputs[0]), int(op.outputs[0])]
            if names[pos] == "ADD":
                data.append(int(op.inputs[1]))
            for t in data[1:]:
                union(data[0], t)
    groups: dict[int, set[int]] = {}
    for pos, op in enumerate(sg.operators):
        if names[pos] in _CONVS:
            out = int(op.outputs[0])
            groups.setdefault(find(out), set()).add(out)
    for t in list(parent):
        groups.setdefault(find(t), set()).add(t)
    prod = flatbuf.producers(model)
    cons = flatbuf.consumers(model)
    boundary = {int(i) for i in sg.inputs} | {int(i) for i in sg.outputs}
    streams: list[Stream] = []
    for members in groups.values():
        if members & boundary:
            continue
        writers: set[int] = set()
        readers: set[int] = set()
        ok = True
        for t in members:
            p = prod.get(t)
            if p is None:
                ok = False
                break
            if names[p] in _CONVS:
                writers.add(p)
                ok = ok and _activation(sg.operators[p]) in _HOMOGENEOUS_ACTIVATIONS
            elif names[p] == "ADD":
                ok = ok and _activation(sg.operators[p]) in _HOMOGENEOUS_ACTIVATIONS
            elif names[p] not in _CHANNEL_LINEAR:
                ok = False
            for c in cons.get(t, []):
                if names[c] in _CHANNEL_LINEAR:
                    if names[c] == "PAD" or names[c] == "RESIZE_BILINEAR":
                        ok = ok and int(sg.operators[c].inputs[0]) == t
                    continue
                if names[c] in _CONVS and int(sg.operators[c].inputs[0]) == t:
                    readers.add(c)
                else:
                    ok = False
        if not ok or not writers or not readers:
            continue
        channels = {int(sg.tensors[t].shape[-1]) for t in members}
        if len(channels) != 1:
            continue
        if any(
            names[c] == "DEPTHWISE_CONV_2D"
            and int(flatbuf._options(sg.operators[c]).get("depthMultiplier", 1)) != 1
            for c in readers
        ):
            continue
        streams.append(
            Stream(
                tensors=tuple(sorted(members)),
                producers=tuple(sorted(writers)),
                consumers=tuple(sorted(readers)),
                channels=channels.pop(),
            )
        )
    return sorted(streams, key=lambda s: s.tensors[0])


def _weights(model: flatbuf.ModelT, pos: int, which: int) -> NDArray[np.float32]:
    index = int(model.subgraphs[0].operators[pos].inputs[which])
    values: NDArray[np.float32] = flatbuf.constant(model, index, np.float32)
    return values


def _set(model: flatbuf.ModelT, pos: int, which: int, values: NDArray[np.float32]) -> None:
    index = int(model.subgraphs[0].operators[pos].inputs[which])
    flatbuf.overwrite_constant(model, index, values.astype(np.float32))


def channel_ranges(
    model_bytes: bytes, streams: Sequence[Stream], inputs: Sequence[NDArray[np.float32]]
) -> list[NDArray[np.float64]]:
    """Per-channel max |activation| of each stream over ``inputs`` (float model)."""
    from edge.modelbuild.prepare import _interpreter

    interp = _interpreter(model_bytes, preserve_all=True)
    inp = interp.get_input_details()[0]
    out = [np.zeros(s.channels) for s in streams]
    for x in inputs:
        interp.set_tensor(inp["index"], x.astype(np.float32).reshape(inp["shape"]))
        interp.invoke()
        for k, s in enumerate(streams):
            for t in s.tensors:
                v = np.abs(np.asarray(interp.get_tensor(t), np.float64))
                out[k] = np.maximum(out[k], v.reshape(-1, s.channels).max(axis=0))
    return out


def equalize(
    model_bytes: bytes, inputs: Sequence[NDArray[np.float32]]
) -> tuple[bytes, list[StreamScaling]]:
    """Equalise every stream; returns the new float model (same function) and a summary."""
    model = flatbuf.read(model_bytes)
    sg = model.subgraphs[0]
    streams = find_streams(model)
    used = [int(sg.operators[p].inputs[w]) for s in streams for p in s.producers for w in (1, 2)]
    used += [int(sg.operators[p].inputs[1]) for s in streams for p in s.consumers]
    shared = {t for t in used if used.count(t) > 1}
    streams = [
        s
        for s in streams
        if not any(int(sg.operators[p].inputs[1]) in shared for p in s.producers + s.consumers)
    ]
    act = channel_ranges(model_bytes, streams, inputs)
    summary: list[StreamScaling] = []
    for s, a in zip(streams, act, strict=True):
        w = np.zeros(s.channels)
        for p in s.consumers:
            wt = np.abs(_weights(model, p, 1).astype(np.float64))
            if flatbuf.op_name(model, sg.operators[p]) == "CONV_2D":
                # relative to each output channel's own range (its int8 scale)
                rel = wt / np.maximum(wt.max(axis=(1, 2, 3), keepdims=True), 1e-12)
                w = np.maximum(w, rel.max(axis=(0, 1, 2)))
            else:
                w = np.maximum(w, np.ones(s.channels))
        a_rel = a / max(float(a.max()), 1e-12)
        live = (a_rel > 1e-6) & (w > 1e-6)
        scale = np.ones(s.channels)
        scale[live] = np.sqrt(a_rel[live] / w[live])
        scale[live] /= float(np.exp(np.mean(np.log(scale[live]))))
        scale = np.clip(scale, 1.0 / MAX_SCALE, MAX_SCALE)
        s32: NDArray[np.float32] = scale.astype(np.float32)
        for p in s.producers:
            wt = _weights(model, p, 1)
            if flatbuf.op_name(model, sg.operators[p]) == "CONV_2D":
                _set(model, p, 1, wt / s32.reshape(-1, 1, 1, 1))
            else:
                _set(model, p, 1, wt / s32.reshape(1, 1, 1, -1))
            _set(model, p, 2, _weights(model, p, 2) / s32)
        for p in s.consumers:
            wt = _weights(model, p, 1)
            _set(model, p, 1, wt * s32.reshape(1, 1, 1, -1))
        summary.append(
            StreamScaling(
                first_tensor=flatbuf.tensor_name(sg.tensors[s.tensors[0]]),
                channels=s.channels,
                scale_min=float(scale.min()),
                scale_max=float(scale.max()),
            )
        )
    return flatbuf.to_bytes(model), summary
