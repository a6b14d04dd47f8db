"""Realtime pacing: deliver media-timed frames at their own rate, like a camera."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Falling further behind than this re-anchors the schedule instead of bursting to catch up.
MAX_LAG_NS = 500_000_000


class Pacer:
    """Sleeps until each frame's media time, measured from the first frame, is due."""

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._anchor: tuple[int, int] | None = None  # (wall_ns, media_ns)

    def reset(self) -> None:
        self._anchor = None

    def wait_until(self, media_ns: int) -> int:
        """Block until `media_ns` is due; return the wall time (ns) of delivery."""
        now = self._clock_ns()
        if self._anchor is None:
            self._anchor = (now, media_ns)
            return now
        wall0, media0 = self._anchor
        due = wall0 + (media_ns - media0)
        if due > now:
            self._sleep((due - now) / 1e9)
            return self._clock_ns()
        if now - due > MAX_LAG_NS:
            self._anchor = (now, media_ns)
        return now
