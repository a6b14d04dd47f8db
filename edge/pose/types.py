"""Frozen value objects that flow out of the pose pipeline.

Coordinates follow MediaPipe: image landmarks are normalised to [0, 1] of the
frame (x right, y down), z is scaled like x; world landmarks are metres,
hip-centred. Arrays are float32 and must not be mutated by consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

#: Number of body landmarks in BlazePose GHUM (MediaPipe's order).
NUM_LANDMARKS = 33

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

FloatArray = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated rectangle in full-frame pixels (MediaPipe's NormalizedRect, unnormalised)."""

    center_x_px: float
    center_y_px: float
    width_px: float
    height_px: float
    rotation_rad: float


@dataclass(frozen=True, slots=True)
class Pose:
    """One person's landmarks in one frame."""

    id: int
    #: The landmark model's pose flag (probability that the crop holds a person).
    score: float
    #: (33, 5): x, y normalised to the frame, z scaled like x, visibility, presence.
    landmarks: FloatArray
    #: (33, 3): metres, hip-centred, rotated back to the frame's orientation.
    world: FloatArray
    #: The ROI the landmarks were computed in.
    roi: Roi | None = None


@dataclass(frozen=True, slots=True)
class PoseResult:
    """Everything the pipeline knows about one frame."""

    timestamp_ns: int
    width: int
    height: int
    poses: tuple[Pose, ...]
    #: (H, W) float32 in [0, 1] of the frame when segmentation is enabled.
    segmentation: FloatArray | None = None
    #: True when the person detector ran on this frame.
    detector_ran: bool = False
    #: Per-stage wall time of this frame in nanoseconds (stage name -> ns).
    stage_ns: dict[str, int] = field(default_factory=dict)
