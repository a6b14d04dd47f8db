"""Temporal filters: One Euro and low-pass, with MediaPipe's landmark-smoothing rules.

Mirrors ``LowPassFilter``, ``OneEuroFilter`` (mediapipe/util/filtering),
``LandmarksSmoothingCalculator`` (one_euro_filter; landmarks in pixels, value scale
1 / object scale) and ``VisibilitySmoothingCalculator`` (low_pass_filter). Each
filter is vectorised over an array; every element sees the same timestamps, as
MediaPipe's per-coordinate filters do. Time is always an argument (``timestamp_ns``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
F64 = NDArray[np.float64]

#: ``frequency`` default of the one_euro_filter options (used until two stamps are seen).
DEFAULT_FREQUENCY_HZ = 30.0
#: ``min_allowed_object_scale`` default: below it landmarks pass unfiltered.
MIN_ALLOWED_OBJECT_SCALE = 1e-6


@dataclass(frozen=True, slots=True)
class OneEuroParams:
    min_cutoff: float
    beta: float
    derivate_cutoff: float
    disable_value_scaling: bool = False


#: ``pose_landmark_filtering.pbtxt`` (mediapipe 0.10.x).
LANDMARKS_ONE_EURO = OneEuroParams(0.05, 80.0, 1.0)
AUXILIARY_ONE_EURO = OneEuroParams(0.01, 10.0, 1.0)
WORLD_ONE_EURO = OneEuroParams(0.1, 40.0, 1.0, disable_value_scaling=True)
VISIBILITY_ALPHA = 0.1


class LowPassFilter:
    """Exponential smoothing: ``y = alpha * x + (1 - alpha) * y_prev``; first value passes."""

    def __init__(self, alpha: float = 1.0) -> None:
        self._alpha = alpha
        self._raw: F64 | None = None
        self._stored: F64 | None = None

    def reset(self) -> None:
        self._raw = None
        self._stored = None

    @property
    def last_raw(self) -> F64 | None:
        return self._raw

    def apply(
        self, value: NDArray[np.floating], alpha: float | NDArray[np.floating] | None = None
    ) -> F64:
        a = self._alpha if alpha is None else alpha
        v = np.asarray(value, np.float64)
        if self._stored is None or self._stored.shape != v.shape:
            result = v.copy()
        else:
            result = a * v + (1.0 - a) * self._stored
        self._raw = v.copy()
        self._stored = result
        return result


def _alpha(cutoff: float | F64, frequency_hz: float) -> F64:
    te = 1.0 / frequency_hz
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    out: F64 = 1.0 / (1.0 + tau / te)
    return out


class OneEuroFilter:
    """One Euro filter over an array (MediaPipe's ``OneEuroFilter::Apply``).

    The rate comes from successive timestamps; a timestamp not after the previous
    one returns the value unfiltered, as MediaPipe does.
    """

    def __init__(
        self,
        min_cutoff: float | F64,
        beta: float | F64,
        derivate_cutoff: float,
        frequency_hz: float = DEFAULT_FREQUENCY_HZ,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivate_cutoff = derivate_cutoff
        self._initial_frequency = frequency_hz
        self.reset()

    def reset(self) -> None:
        self._frequency = self._initial_frequency
        self._last_ns = 0
        self._x = LowPassFilter()
        self._dx = LowPassFilter()

    def apply(
        self, value: NDArray[np.floating], timestamp_ns: int, value_scale: float | F64 = 1.0
    ) -> F64:
        v = np.asarray(value, np.float64)
        if self._last_ns >= timestamp_ns:
            return v.copy()
        if self._last_ns != 0 and timestamp_ns != 0:
            self._frequency = 1.0 / ((timestamp_ns - self._last_ns) * 1e-9)
        self._last_ns = timestamp_ns
        last = self._x.last_raw
        if last is not None and last.shape == v.shape:
            dvalue = (v - last) * value_scale * self._frequency
        else:
            dvalue = np.zeros_like(v)
        edvalue = self._dx.apply(dvalue, _alpha(self.derivate_cutoff, self._frequency))
        cutoff = self.min_cutoff + self.beta * np.abs(edvalue)
        return self._x.apply(v, _alpha(cutoff, self._frequency))


class LandmarksSmoother:
    """``LandmarksSmoothingCalculator`` with a one_euro_filter.

    Normalised landmarks go to pixels (x * W, y * H, z * W), are filtered with value
    scale ``1 / object_scale_px`` (unless ``disable_value_scaling``), and come back
    normalised. World landmarks (metres) use ``normalized=False``.
    """

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._filter = OneEuroFilter(params.min_cutoff, params.beta, params.derivate_cutoff)

    def reset(self) -> None:
        self._filter.reset()

    def apply(
        self,
        xyz: NDArray[np.floating],
        timestamp_ns: int,
        *,
        image_size_px: tuple[int, int] | None = None,
        object_scale_px: float | None = None,
    ) -> FloatArray:
        """Filter ``(N, 3)`` coordinates; ``image_size_px`` = (W, H) for normalised input."""
        pts = np.asarray(xyz, np.float64)
        if image_size_px is not None:
            w, h = image_size_px
            factor = np.array([w, h, w], np.float64)
            pts = pts * factor
        value_scale = 1.0
        if not self.params.disable_value_scaling:
            scale = object_scale_px if object_scale_px is not None else _bbox_scale(pts)
            if scale < MIN_ALLOWED_OBJECT_SCALE:
                return np.asarray(xyz, np.float32).copy()
            value_scale = 1.0 / scale
        out = self._filter.apply(pts, timestamp_ns, value_scale)
        if image_size_px is not None:
            out = out / factor
        return out.astype(np.float32)


def _bbox_scale(pts: F64) -> float:
    """``GetObjectScale(landmarks)``: mean of the bounding box's width and height."""
    span = pts[:, :2].max(axis=0) - pts[:, :2].min(axis=0)
    return float(span.sum() / 2.0)


class VisibilitySmoother:
    """``VisibilitySmoothingCalculator`` with a low-pass filter (visibility only)."""

    def __init__(self, alpha: float = VISIBILITY_ALPHA) -> None:
        self._filter = LowPassFilter(alpha)

    def reset(self) -> None:
        self._filter.reset()

    def apply(self, visibility: NDArray[np.floating]) -> FloatArray:
        return self._filter.apply(visibility).astype(np.float32)


class PoseSmoother:
    """All of ``pose_landmark_filtering.pbtxt`` for one person in one filter call.

    The 33 image landmarks (One Euro 0.05 / 80 / 1, value scale 1 / object scale,
    in pixels), the 2 auxiliary landmarks (0.01 / 10 / 1, same scale), the 33 world
    landmarks (0.1 / 40 / 1, no value scaling) and the visibility low-pass (0.1).
    MediaPipe filters every coordinate separately with the same timestamps, so
    stacking them into one array with per-row parameters gives the same numbers as
    four :class:`LandmarksSmoother` / :class:`VisibilitySmoother` calls, at a third
    of the cost.
    """

    def __init__(
        self,
        body: OneEuroParams = LANDMARKS_ONE_EURO,
        auxiliary: OneEuroParams = AUXILIARY_ONE_EURO,
        world: OneEuroParams = WORLD_ONE_EURO,
        num_body: int = 33,
        num_auxiliary: int = 2,
    ) -> None:
        rows = [(body, num_body), (auxiliary, num_auxiliary), (world, num_body)]
        self._slices = (
            slice(0, num_body),
            slice(num_body, num_body + num_auxiliary),
            slice(num_body + num_auxiliary, 2 * num_body + num_auxiliary),
        )
        if len({p.derivate_cutoff for p, _ in rows}) != 1:
            raise ValueError("stacked filters need one derivate_cutoff")
        min_cutoff = np.concatenate([np.full((n, 1), p.min_cutoff) for p, n in rows])
        beta = np.concatenate([np.full((n, 1), p.beta) for p, n in rows])
        self._scaled = np.concatenate(
            [np.full((n, 1), not p.disable_value_scaling) for p, n in rows]
        )
        self._filter = OneEuroFilter(min_cutoff, beta, body.derivate_cutoff)
        self._visibility = LowPassFilter(VISIBILITY_ALPHA)

    def reset(self) -> None:
        self._filter.reset()
        self._visibility.reset()

    def apply(
        self,
        body: NDArray[np.floating],
        auxiliary: NDArray[np.floating],
        world: NDArray[np.floating],
        *,
        timestamp_ns: int,
        image_size_px: tuple[int, int],
        object_scale_px: float,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Smooth body ``(33, >=4)`` (x, y, z, visibility), auxiliary ``(2, >=3)``
        (normalised) and world ``(33, 3)`` landmarks; returns new arrays."""
        w, h = image_size_px
        factor = np.array([w, h, w], np.float64)
        b = np.asarray(body, np.float64)
        a = np.asarray(auxiliary, np.float64)
        stacked = np.concatenate([b[:, :3] * factor, a[:, :3] * factor, np.asarray(world)])
        out_body = np.asarray(body, np.float32).copy()
        out_aux = np.asarray(auxiliary, np.float32).copy()
        if object_scale_px < MIN_ALLOWED_OBJECT_SCALE:
            return out_body, out_aux, np.asarray(world, np.float32).copy()
        value_scale = np.where(self._scaled, 1.0 / object_scale_px, 1.0)
        out = self._filter.apply(stacked, timestamp_ns, value_scale)
        sb, sa, sw = self._slices
        out_body[:, :3] = out[sb] / factor
        out_body[:, 3] = self._visibility.apply(b[:, 3])
        out_aux[:, :3] = out[sa] / factor
        return out_body, out_aux, out[sw].astype(np.float32)
