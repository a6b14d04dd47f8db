"""Step 2 of a build: activation ranges from calibration samples.

The float model runs on every calibration sample with all intermediate tensors
preserved. For each activation tensor we keep its exact min/max and a fixed
random subsample of its values (the same element positions on every sample), so
a range can be min/max or a percentile of the pooled values. Deterministic: the
subsample positions come from a seeded generator and samples are processed in
the order given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

#: Values kept per tensor per sample for percentile ranges.
VALUES_PER_SAMPLE = 4096


RangeMethod = Literal["minmax", "mean_minmax", "percentile", "mse"]


@dataclass(frozen=True, slots=True)
class RangePolicy:
    """How activation ranges are chosen for one model.

    ``minmax``: extremes over all samples; ``mean_minmax``: the mean over samples
    of each sample's min and max (what the quantizer's moving average
    approximates, without its order dependence); ``percentile``: the
    (100 - p, p) percentiles of the pooled values. ``overrides`` maps a regular
    expression on tensor names to a fixed (min, max); the first match wins.
    """

    method: RangeMethod = "minmax"
    percentile: float = 99.9
    overrides: tuple[tuple[str, float, float], ...] = ()

    def describe(self) -> str:
        return f"percentile {self.percentile}" if self.method == "percentile" else self.method


@dataclass(slots=True)
class _Stats:
    minimum: float = np.inf
    maximum: float = -np.inf
    sample_min: list[float] = field(default_factory=list)
    sample_max: list[float] = field(default_factory=list)
    values: list[NDArray[np.float32]] = field(default_factory=list)


def activation_names(model_bytes: bytes) -> list[str]:
    """Names of the float tensors ops write (and the graph input), in graph order."""
    from edge.modelbuild import flatbuf

    model = flatbuf.read(model_bytes)
    sg = model.subgraphs[0]
    indices = [int(i) for i in sg.inputs]
    for op in sg.operators:
        indices += [int(i) for i in op.outputs]
    float32 = flatbuf.tensor_type_code("FLOAT32")
    return [flatbuf.tensor_name(sg.tensors[i]) for i in indices if sg.tensors[i].type == float32]


def collect_stats(
    model_bytes: bytes,
    samples: Iterable[NDArray[np.float32]],
    seed: int = 0,
    progress: Any = None,
    observer: Callable[[Callable[[str], NDArray[np.float32]]], None] | None = None,
) -> dict[str, _Stats]:
    """Run the float model on ``samples`` and gather per-tensor statistics."""
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(
        model_content=model_bytes,
        num_threads=2,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    by_name = {d["name"]: int(d["index"]) for d in interp.get_tensor_details()}
    names = {n: by_name[n] for n in activation_names(model_bytes) if n in by_name}
    rng = np.random.default_rng(seed)
    picks: dict[str, NDArray[np.int64]] = {}
    stats: dict[str, _Stats] = {name: _Stats() for name in names}
    for sample in samples:
        interp.set_tensor(inp["index"], sample.reshape(inp["shape"]).astype(np.float32))
        interp.invoke()
        if not picks:
            for name, index in names.items():
                size = int(np.prod(interp.get_tensor(index).shape))
                picks[name] = np.sort(
                    rng.choice(size, size=min(size, VALUES_PER_SAMPLE), replace=False)
                )
        fetched: dict[str, NDArray[np.float32]] = {}
        for name, index in names.items():
            fetched[name] = interp.get_tensor(index)
            flat = fetched[name].reshape(-1)
            st = stats[name]
            lo, hi = float(flat.min()), float(flat.max())
            st.minimum = min(st.minimum, lo)
            st.maximum = max(st.maximum, hi)
            st.sample_min.append(lo)
            st.sample_max.append(hi)
            st.values.append(flat[picks[name]].astype(np.float32))
        if observer is not None:
            observer(_lookup(fetched, interp, by_name))
        if progress is not None:
            progress.update(1)
    return stats


def _lookup(
    fetched: dict[str, NDArray[np.float32]], interp: Any, by_name: dict[str, int]
) -> Callable[[str], NDArray[np.float32]]:
    def get(name: str) -> NDArray[np.float32]:
        if name in fetched:
            return fetched[name]
        value: NDArray[np.float32] = interp.get_tensor(by_name[name])
        return value

    return get


def choose_ranges(
    stats: Mapping[str, _Stats], policy: RangePolicy
) -> dict[str, tuple[float, float]]:
    """Final (min, max) per tensor under ``policy``; always contains 0 in the range."""
    out: dict[str, tuple[float, float]] = {}
    for name, st in stats.items():
        override = next(
            ((lo, hi) for pattern, lo, hi in policy.overrides if re.search(pattern, name)), None
        )
        if override is not None:
            lo, hi = override
        elif policy.method == "minmax":
            lo, hi = st.minimum, st.maximum
        elif policy.method == "mean_minmax":
            lo, hi = float(np.mean(st.sample_min)), float(np.mean(st.sample_max))
        elif policy.method == "mse":
            lo, hi = mse_range(st)
        else:
            pooled = np.concatenate(st.values)
            lo = float(np.percentile(pooled, 100.0 - policy.percentile))
            hi = float(np.percentile(pooled, policy.percentile))
        out[name] = (min(float(lo), 0.0), max(float(hi), 0.0))
    return out


#: Tail mass (percent, each side) of the candidate clipping ranges ``mse`` tries.
MSE_TAILS_PERCENT = (0.001, 0.003, 0.01, 0.03, 0.1)
_MSE_MAX_VALUES = 200_000


def _int8_mse(values: NDArray[np.float64], lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return 0.0
    scale = (hi - lo) / 255.0
    zero_point = np.round(-lo / scale) - 128.0
    q = np.clip(np.round(values / scale) + zero_point, -128, 127)
    return float(np.mean(((q - zero_point) * scale - values) ** 2))


def mse_range(st: _Stats) -> tuple[float, float]:
    """The candidate range (exact min/max, or a percentile clip) with the least int8 MSE."""
    pooled = np.concatenate(st.values).astype(np.float64)
    if pooled.size > _MSE_MAX_VALUES:
        pooled = pooled[:: int(np.ceil(pooled.size / _MSE_MAX_VALUES))]
    candidates = [(st.minimum, st.maximum)]
    for tail in MSE_TAILS_PERCENT:
        lo, hi = np.percentile(pooled, [tail, 100.0 - tail])
        candidates.append((float(lo), float(hi)))
    errors = [_int8_mse(pooled, lo, hi) for lo, hi in candidates]
    return candidates[int(np.argmin(errors))]


def to_qsvs(
    ranges: Mapping[str, tuple[float, float]], template: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, NDArray[np.float32]]]:
    """The quantizer's calibration result (``{name: {"min", "max"}}``) with our ranges.

    ``template`` is a calibration result from the quantizer itself: it fixes the
    key set and the array shapes the quantizer expects.
    """
    out: dict[str, dict[str, NDArray[np.float32]]] = {}
    for name, qsv in template.items():
        if name not in ranges or "min" not in qsv:
            out[name] = dict(qsv)
            continue
        lo, hi = ranges[name]
        shape = np.asarray(qsv["min"]).shape
        out[name] = {
            **qsv,
            "min": np.full(shape, lo, dtype=np.float32),
            "max": np.full(shape, hi, dtype=np.float32),
        }
    return out
