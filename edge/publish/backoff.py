"""Exponential reconnect backoff with full jitter (pure; the random source is passed in)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``uniform(min, min(max, min * 2**n))``: spreads a fleet's reconnects."""

    min_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay_s(self) -> float:
        ceiling = min(self.max_s, self.min_s * (2.0 ** min(self.attempt, 30)))
        self.attempt += 1
        return self.rng.uniform(self.min_s, max(self.min_s, ceiling))

    def reset(self) -> None:
        self.attempt = 0
