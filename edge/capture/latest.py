"""`LatestFrameCapture`: a capture thread with a one-slot buffer and fault recovery.

The thread reads the source as fast as it delivers and keeps only the newest
frame; a frame replaced before anyone took it counts as dropped. The consumer's
`get` returns the newest frame it has not seen yet, so inference never works on a
stale frame and a slow consumer never grows memory. After `stop`,
``frames_captured == frames_consumed + frames_dropped`` exactly.

When a source faults (`SourceFault`: a stream drops, a USB camera is unplugged, a
camera stalls for ``stall_timeout_s``) the thread logs one warning, counts the
fault, remembers it in `last_fault`, closes the source and reopens it with bounded
exponential backoff and jitter until it delivers again, logging the recovery. A
`SourceError` when first opening (a missing file, no camera, a camera in use)
raises from `start`; one later ends the capture and is kept in `error`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

from edge.capture.options import BackoffPolicy, backoff_delay_s
from edge.capture.types import CaptureError, Frame, FrameSource, SourceError, SourceFault

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A consistent snapshot of the capture counters."""

    frames_captured: int
    frames_consumed: int
    frames_dropped: int
    #: Fault episodes: each time a delivering (or starting) source stopped delivering.
    faults: int
    #: Reopen attempts made while recovering (successful or not).
    reconnect_attempts: int
    #: Faults that ended with the source delivering again.
    recoveries: int
    last_fault: str | None
    #: Seconds without frames in the last outage: last frame before the fault to the
    #: first frame after it (None before any recovery).
    last_outage_s: float | None
    #: Seconds from detecting the last fault to the first frame after it.
    last_recovery_s: float | None
    #: Seconds since the last frame arrived (None before the first): a health signal
    #: for sources whose read can block longer than their stall timeout.
    frame_age_s: float | None
    #: True while the source is down and being retried.
    faulted: bool
    ended: bool


class LatestFrameCapture:
    """Run `source` on a thread, keeping only its newest frame for the consumer.

    `backoff` bounds the reconnection delays; `rng` (for the jitter), `clock_ns`
    (for outage times) and `wait` can be injected in tests. Use as a context manager
    or call `start` and `stop`.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        name: str = "edge-capture",
    ) -> None:
        self.source = source
        self.backoff = backoff or BackoffPolicy()
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns
        self._name = name
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._slot: Frame | None = None
        self._captured = 0
        self._consumed = 0
        self._dropped = 0
        self._faults = 0
        self._attempts = 0
        self._recoveries = 0
        self._last_fault: str | None = None
        self._last_outage_s: float | None = None
        self._last_recovery_s: float | None = None
        self._last_frame_ns: int | None = None
        self._fault_since_ns: int | None = None
        self._ended = False
        self._error: CaptureError | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Open the source and start the thread.

        A `SourceError` (bad file, no camera, camera busy) raises here; a
        `SourceFault` (stream not up yet) is counted and retried by the thread.
        """
        if self._thread is not None:
            raise RuntimeError("LatestFrameCapture already started")
        need_recovery = False
        try:
            self.source.open()
        except SourceFault as e:
            self._on_fault(e)
            need_recovery = True
        self._thread = threading.Thread(
            target=self._run, args=(need_recovery,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread, close the source and count an unconsumed frame as dropped."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("capture thread still blocked in read() after %.1f s", timeout_s)
        with self._cond:
            if self._slot is not None:
                self._slot = None
                self._dropped += 1
            self._ended = True
            self._cond.notify_all()
        if thread is None or not thread.is_alive():
            self._close_source()

    def __enter__(self) -> LatestFrameCapture:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- consumer side --------------------------------------------------------------

    def get(self, timeout_s: float | None = None) -> Frame | None:
        """The newest frame not yet returned; None on timeout or when the stream has ended.

        Check `ended` to tell the two apart.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._slot is None and not self._ended:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            if frame is not None:
                self._consumed += 1
            return frame

    def frames(self, timeout_s: float | None = None) -> Iterator[Frame]:
        """Yield newest frames until the stream ends (or `timeout_s` passes without one)."""
        while True:
            frame = self.get(timeout_s)
            if frame is None:
                return
            yield frame

    # -- counters -------------------------------------------------------------------

    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(
                frames_captured=self._captured,
                frames_consumed=self._consumed,
                frames_dropped=self._dropped,
                faults=self._faults,
                reconnect_attempts=self._attempts,
                recoveries=self._recoveries,
                last_fault=self._last_fault,
                last_outage_s=self._last_outage_s,
                last_recovery_s=self._last_recovery_s,
                frame_age_s=(
                    None
                    if self._last_frame_ns is None
                    else (self._clock_ns() - self._last_frame_ns) / 1e9
                ),
                faulted=self._fault_since_ns is not None,
                ended=self._ended,
            )

    @property
    def frames_captured(self) -> int:
        return self._captured

    @property
    def frames_dropped(self) -> int:
        return self._dropped

    @property
    def faults(self) -> int:
        return self._faults

    @property
    def last_fault(self) -> str | None:
        return self._last_fault

    @property
    def ended(self) -> bool:
        """True once the source reached its end (or failed for good, see `error`) or stopped."""
        return self._ended

    @property
    def error(self) -> CaptureError | None:
        """The error that ended the capture, if one did."""
        return self._error

    # -- capture thread ---------------------------------------------------------------

    def _run(self, need_recovery: bool) -> None:
        try:
            if need_recovery and not self._recover():
                return
            while not self._stopping.is_set():
                try:
                    frame = self.source.read()
                except SourceFault as e:
                    self._on_fault(e)
                    if not self._recover():
                        return
                    continue
                if frame is None:
                    log.info("%s: end of stream", self.source.describe().uri)
                    return
                self._put(frame)
        except CaptureError as e:
            log.error("capture stopped: %s", e)
            self._error = e
        except Exception as e:
            log.exception("capture thread failed")
            self._error = SourceError(f"capture failed: {e!r}")
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None:
                self._dropped += 1
            self._slot = frame
            self._captured += 1
            now_ns = self._clock_ns()
            if self._fault_since_ns is not None:
                self._last_recovery_s = (now_ns - self._fault_since_ns) / 1e9
                since_ns = self._last_frame_ns or self._fault_since_ns
                self._last_outage_s = (now_ns - since_ns) / 1e9
                self._fault_since_ns = None
                self._recoveries += 1
                log.warning(
                    "capture recovered: %.1f s without frames (%d reconnect attempts so far)",
                    self._last_outage_s,
                    self._attempts,
                )
            self._last_frame_ns = now_ns
            self._cond.notify()

    def _on_fault(self, error: BaseException) -> None:
        with self._cond:
            self._faults += 1
            self._last_fault = str(error)
            self._fault_since_ns = self._clock_ns()
        log.warning("capture fault #%d: %s; reconnecting with backoff", self._faults, error)

    def _recover(self) -> bool:
        """Close and reopen the source with backoff until it opens; False when stopping."""
        self._close_source()
        attempt = 0
        while True:
            delay_s = backoff_delay_s(attempt, self.backoff, self._rng.random())
            if self._stopping.wait(delay_s):
                return False
            attempt += 1
            with self._cond:
                self._attempts += 1
            try:
                self.source.open()
            except CaptureError as e:  # during recovery every error may be transient
                with self._cond:
                    self._last_fault = str(e)
                log.info("reconnect attempt %d failed: %s", attempt, e)
                self._close_source()
                continue
            log.info("source reopened after %d attempt(s)", attempt)
            return True

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as e:
            log.warning("closing the source failed: %s", e)
