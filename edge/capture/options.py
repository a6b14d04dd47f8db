"""`SourceOptions`: the per-source settings the config maps onto, and the backoff policy."""

from __future__ import annotations

from dataclasses import dataclass

#: Rotations a source can apply, in degrees clockwise.
ROTATIONS_DEG = (0, 90, 180, 270)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Bounded exponential backoff between reconnection attempts, with jitter.

    Attempt n (0-based) waits ``min(max_s, initial_s * multiplier**n)``, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]`` so that a fleet of cameras does not
    hammer a recovering server in step.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("backoff: need 0 < initial_s <= max_s")
        if self.multiplier < 1:
            raise ValueError("backoff: multiplier must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff: jitter must be in [0, 1)")


def backoff_delay_s(attempt: int, policy: BackoffPolicy, unit_random: float) -> float:
    """Seconds to wait before reconnection attempt `attempt` (0-based).

    `unit_random` is a number in [0, 1) (``random.random()``), passed in so that the
    schedule is a pure function.
    """
    base = min(policy.max_s, policy.initial_s * policy.multiplier ** min(attempt, 64))
    return base * (1.0 - policy.jitter + 2.0 * policy.jitter * unit_random)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Options for every source kind; each adapter reads the ones that apply to it.

    Sizes: `width`/`height` are *requested* from cameras (the picamera2 ``lores``
    stream, a V4L2 device); files, streams and images keep their own size. None
    means the device default (picamera2: 640x480).
    """

    width: int | None = None
    height: int | None = None
    #: Requested camera frame rate; for image folders, the rate their timestamps assume
    #: (30 when None) and, with `realtime`, the pacing rate.
    fps: float | None = None
    #: Files and images: start again at the end instead of ending the stream.
    loop: bool = False
    #: Files and images: deliver at the media's own frame rate (like a camera) instead
    #: of as fast as they decode. Timestamps are then monotonic wall time.
    realtime: bool = False
    #: Clockwise rotation in degrees (0, 90, 180, 270), applied after flips.
    rotation: int = 0
    hflip: bool = False
    vflip: bool = False
    #: A live source that delivers nothing for this long is declared faulty and reopened.
    stall_timeout_s: float = 5.0
    #: How long opening a network stream may take.
    open_timeout_s: float = 10.0
    #: V4L2: pixel format to ask for ("MJPG" lets USB cameras reach full rate); None = default.
    fourcc: str | None = "MJPG"
    #: picamera2: lores stream format, "YUV420" (works on every Pi) or "RGB888"/"BGR888"
    #: (Pi 5), converted to RGB.
    pixel_format: str = "YUV420"
    #: picamera2: also configure a full-size ``main`` stream for snapshots (width, height).
    main_size: tuple[int, int] | None = None
    #: picamera2: fixed exposure in microseconds (turns auto-exposure off); None = auto.
    exposure_time_us: int | None = None
    #: picamera2: fixed analogue gain; None = auto.
    analogue_gain: float | None = None
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS_DEG:
            raise ValueError(f"rotation must be one of {ROTATIONS_DEG}, got {self.rotation}")
        if (self.width is None) != (self.height is None):
            raise ValueError("width and height must be given together")
        if self.width is not None and self.height is not None and min(self.width, self.height) <= 0:
            raise ValueError("width and height must be positive")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be positive")
        if self.stall_timeout_s <= 0 or self.open_timeout_s <= 0:
            raise ValueError("stall_timeout_s and open_timeout_s must be positive")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ValueError("fourcc must have 4 characters, e.g. MJPG or YUYV")
        BackoffPolicy(self.backoff_initial_s, self.backoff_max_s)

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(initial_s=self.backoff_initial_s, max_s=self.backoff_max_s)
