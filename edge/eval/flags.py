"""Pose-flag agreement: does a candidate landmark model say "person" where the float model does?

The landmark model's pose flag (its ``1x1`` output) decides whether a track
survives. Crops of people and of empty scenes are fed straight to both models
(256x256 RGB, the model's own input quantisation), and the decisions at the
tracking threshold are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.eval.keypoints import AnnotatedPerson
from edge.eval.presence import read_intervals
from edge.eval.reference import iter_video_rgb, read_image_rgb
from edge.pose.types import PoseResult

#: MediaPipe's ``min_tracking_confidence`` default: the flag threshold that drops a track.
FLAG_THRESHOLD = 0.5
EMPTY_IMAGE = "images/empty-living-room.jpg"
EMPTY_CLIP = "video/one-by-one-enter-leave.mp4"


@dataclass(frozen=True, slots=True)
class FlagAgreement:
    """Decisions (flag >= threshold) of a candidate and the float model on the same crops."""

    crops: int
    #: Share of crops where both models decide the same way.
    agreement: float
    #: Share of crops the candidate calls a person.
    candidate_positive: float
    #: Share of crops the float model calls a person.
    reference_positive: float


def flag_agreement(
    candidate_flags: NDArray[np.floating],
    reference_flags: NDArray[np.floating],
    threshold: float = FLAG_THRESHOLD,
) -> FlagAgreement:
    """Compare two models' pose-flag probabilities on the same crops (pure)."""
    cand = np.asarray(candidate_flags, dtype=np.float64) >= threshold
    ref = np.asarray(reference_flags, dtype=np.float64) >= threshold
    if cand.shape != ref.shape:
        raise ValueError(f"flag arrays differ in shape: {cand.shape} vs {ref.shape}")
    if cand.size == 0:
        nan = float("nan")
        return FlagAgreement(crops=0, agreement=nan, candidate_positive=nan, reference_positive=nan)
    return FlagAgreement(
        crops=int(cand.size),
        agreement=float((cand == ref).mean()),
        candidate_positive=float(cand.mean()),
        reference_positive=float(ref.mean()),
    )


def square_crops(
    image: NDArray[np.uint8], boxes_xyxy: Sequence[tuple[int, int, int, int]], size_px: int = 256
) -> NDArray[np.uint8]:
    """``(n, size, size, 3)`` crops of ``image`` resized (bilinear) to the model's input."""
    import cv2

    out = np.zeros((len(boxes_xyxy), size_px, size_px, 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes_xyxy):
        patch = np.ascontiguousarray(image[y0:y1, x0:x1])
        out[i] = cv2.resize(patch, (size_px, size_px), interpolation=cv2.INTER_LINEAR)
    return out


def square_box(
    bbox_xywh_px: tuple[float, float, float, float], width: int, height: int, scale: float = 1.25
) -> tuple[int, int, int, int]:
    """A square ``scale`` times the box's longer side, centred on it, clipped to the image."""
    x, y, w, h = bbox_xywh_px
    cx, cy, half = x + w / 2.0, y + h / 2.0, max(w, h) * scale / 2.0
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"box {bbox_xywh_px} lies outside the {width}x{height} image")
    return x0, y0, x1, y1


def grid_boxes(
    width: int, height: int, sides_px: Sequence[int], step_fraction: float = 0.5
) -> list[tuple[int, int, int, int]]:
    """Square boxes of the given sides tiled over an image (for non-person crops)."""
    boxes = []
    for wanted in sides_px:
        side = min(wanted, width, height)
        step = max(1, int(side * step_fraction))
        for y in range(0, height - side + 1, step):
            for x in range(0, width - side + 1, step):
                boxes.append((x, y, x + side, y + side))
    return boxes


def _pose_box(result: PoseResult) -> tuple[float, float, float, float] | None:
    if not result.poses:
        return None
    xy = np.asarray(result.poses[0].landmarks, np.float64)[:, :2] * [result.width, result.height]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def person_crops(
    persons: Sequence[AnnotatedPerson],
    clip_frames: Sequence[tuple[NDArray[np.uint8], PoseResult]],
) -> NDArray[np.uint8]:
    """256x256 crops around annotated persons and around float-pipeline poses on clip frames."""
    crops = []
    for person in persons:
        image = read_image_rgb(person.image_path)
        box = square_box(person.bbox_xywh_px, image.shape[1], image.shape[0])
        crops.append(square_crops(image, [box]))
    for rgb, result in clip_frames:
        pose_box = _pose_box(result)
        if pose_box is not None:
            box = square_box(pose_box, rgb.shape[1], rgb.shape[0])
            crops.append(square_crops(rgb, [box]))
    return np.concatenate(crops) if crops else np.zeros((0, 256, 256, 3), np.uint8)


def nonperson_crops(data_dir: Path, max_crops: int = 64) -> NDArray[np.uint8]:
    """Crops of scenes with nobody in them: the empty room, and empty frames of a clip."""
    crops = []
    room = read_image_rgb(data_dir / EMPTY_IMAGE)
    h, w = room.shape[:2]
    crops.append(square_crops(room, grid_boxes(w, h, [h, h * 2 // 3, h // 2])))
    intervals = read_intervals(data_dir / EMPTY_CLIP)
    if intervals:
        first_start = min(start for start, _ in intervals)
        for i, rgb in enumerate(iter_video_rgb(data_dir / EMPTY_CLIP)):
            if i >= first_start - 10:
                break
            if i % 10 == 0:
                fh, fw = rgb.shape[:2]
                crops.append(
                    square_crops(rgb, grid_boxes(fw, fh, [fh, fh // 2], step_fraction=1.0))
                )
    allc = np.concatenate(crops)
    if len(allc) > max_crops:
        keep = np.linspace(0, len(allc) - 1, max_crops).round().astype(int)
        allc = allc[keep]
    return allc


def pose_flags(
    landmark_path: Path, crops: NDArray[np.uint8], threads: int = 2
) -> NDArray[np.float64]:
    """The landmark model's pose flag for each 256x256 RGB crop (input in [0, 1])."""
    from edge.runtime.model import load_model

    model = load_model(landmark_path, num_threads=threads)
    flag_index = next(i for i, o in enumerate(model.outputs) if int(np.prod(o.shape)) == 1)
    out = np.zeros(len(crops))
    for i, crop in enumerate(crops):
        model.set_input(crop[None].astype(np.float32) / np.float32(255.0))
        model.invoke()
        out[i] = float(model.output(flag_index).reshape(-1)[0])
    return out
