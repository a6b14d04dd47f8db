"""Robust statistics over the raw per-frame samples of one bench run.

A bench run is bounded (hundreds of frames), so it keeps every sample and computes
exact percentiles; the daemon's fixed-bucket histograms live in :mod:`edge.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def sigma_clip(
    values: NDArray[np.float64], sigma: float = 3.0, iters: int = 5
) -> NDArray[np.bool_]:
    """Mask of samples kept by iterative sigma clipping around the median."""
    keep = np.isfinite(values)
    for _ in range(iters):
        if keep.sum() < 3:
            break
        kept = values[keep]
        med = float(np.median(kept))
        std = float(kept.std())
        if std == 0.0:
            break
        new_keep = keep & (np.abs(values - med) <= sigma * std)
        if bool((new_keep == keep).all()):
            break
        keep = new_keep
    return keep


def summarise_ns(samples_ns: Sequence[int] | NDArray[np.int64]) -> dict[str, float | int]:
    """count, mean, p50/p95/p99, max (ms) and the sigma-clipped mean of durations in ns."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        return {"count": 0}
    keep = sigma_clip(ms)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "count": int(ms.size),
        "mean_ms": round(float(ms.mean()), 4),
        "p50_ms": round(float(p50), 4),
        "p95_ms": round(float(p95), 4),
        "p99_ms": round(float(p99), 4),
        "max_ms": round(float(ms.max()), 4),
        "clipped_mean_ms": round(float(ms[keep].mean()), 4),
        "outliers": int((~keep).sum()),
    }


def rolling_fps(frame_ns: Sequence[int], window: int = 25) -> list[float]:
    """Frames per second over a sliding window of per-frame durations (one value per frame)."""
    arr = np.asarray(frame_ns, dtype=np.float64)
    if arr.size == 0:
        return []
    csum = np.concatenate([[0.0], np.cumsum(arr)])
    out: list[float] = []
    for i in range(1, arr.size + 1):
        lo = max(0, i - window)
        span = csum[i] - csum[lo]
        out.append(round((i - lo) * 1e9 / span, 3) if span > 0 else 0.0)
    return out
