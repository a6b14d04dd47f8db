"""Counters, latency histograms and a frame-rate meter, shared by the daemon, the
publisher's stats message and the benchmarks.

Time is an argument: nothing here reads the clock. Histograms use fixed
log-spaced buckets (about 10 % wide), so recording is O(1), memory is constant
for months of frames, and percentiles are accurate to a bucket's width.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

#: Bucket edges grow by this factor; percentiles are within ~5 % of the truth.
_GROWTH = 1.1
#: The smallest bucket starts at 1 microsecond; anything faster lands in bucket 0.
_MIN_NS = 1_000
#: 1 us * 1.1**240 is about 9e3 s: a frame never takes longer.
_NUM_BUCKETS = 240
_LOG_GROWTH = math.log(_GROWTH)


class Counter:
    """A thread-safe monotonically increasing count."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        return self._value


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean_ms": round(self.mean_ms, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
        }


def _bucket(value_ns: int) -> int:
    if value_ns <= _MIN_NS:
        return 0
    index = int(math.log(value_ns / _MIN_NS) / _LOG_GROWTH) + 1
    return min(index, _NUM_BUCKETS - 1)


def _bucket_mid_ns(index: int) -> float:
    if index == 0:
        return float(_MIN_NS)
    low = _MIN_NS * _GROWTH ** (index - 1)
    return low * math.sqrt(_GROWTH)


class LatencyHistogram:
    """Durations in nanoseconds in fixed log-spaced buckets (thread-safe)."""

    def __init__(self) -> None:
        self._counts = [0] * _NUM_BUCKETS
        self._count = 0
        self._sum_ns = 0
        self._max_ns = 0
        self._lock = threading.Lock()

    def record(self, duration_ns: int) -> None:
        if duration_ns < 0:
            raise ValueError(f"a duration cannot be negative: {duration_ns} ns")
        with self._lock:
            self._counts[_bucket(duration_ns)] += 1
            self._count += 1
            self._sum_ns += duration_ns
            self._max_ns = max(self._max_ns, duration_ns)

    @property
    def count(self) -> int:
        return self._count

    def percentile_ns(self, q: float) -> float:
        """The q-th percentile (0..100), at the middle of its bucket; 0.0 when empty."""
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be within 0..100, got {q}")
        with self._lock:
            if self._count == 0:
                return 0.0
            rank = max(1, math.ceil(q / 100.0 * self._count))
            seen = 0
            for index, n in enumerate(self._counts):
                seen += n
                if seen >= rank:
                    return min(_bucket_mid_ns(index), float(self._max_ns))
            return float(self._max_ns)

    def summary(self) -> LatencySummary:
        count = self._count
        mean_ns = self._sum_ns / count if count else 0.0
        return LatencySummary(
            count=count,
            mean_ms=mean_ns / 1e6,
            p50_ms=self.percentile_ns(50) / 1e6,
            p90_ms=self.percentile_ns(90) / 1e6,
            p99_ms=self.percentile_ns(99) / 1e6,
            max_ms=self._max_ns / 1e6,
        )

    def reset(self) -> None:
        with self._lock:
            self._counts = [0] * _NUM_BUCKETS
            self._count = 0
            self._sum_ns = 0
            self._max_ns = 0


class RateMeter:
    """Events per second over a sliding window of monotonic timestamps."""

    def __init__(self, window_s: float = 5.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self._window_ns = int(window_s * 1e9)
        self._times_ns: deque[int] = deque()

    def tick(self, now_ns: int) -> None:
        self._times_ns.append(now_ns)
        self._trim(now_ns)

    def rate_per_s(self, now_ns: int) -> float:
        self._trim(now_ns)
        if len(self._times_ns) < 2:
            return 0.0
        span_ns = now_ns - self._times_ns[0]
        if span_ns <= 0:
            return 0.0
        return (len(self._times_ns) - 1) * 1e9 / span_ns

    def _trim(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        while self._times_ns and self._times_ns[0] < cutoff:
            self._times_ns.popleft()
