"""Calibration frames: videos and image folders -> a deterministic list of RGB frames.

Inputs are expanded in sorted order (folders to their sorted image files), each
video is sampled at evenly spaced frame indices, and every frame is tagged with
a held-out flag so evaluation never sees a calibration frame. The digest of the
inputs (file names, sizes, content hashes) goes in the manifest. A video with a
presence annotation beside it (``clip.presence.json``, see
:mod:`edge.eval.presence`) also tags each frame with whether a person is there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.eval.presence import PRESENCE_SUFFIX, frame_presence, read_intervals

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

#: One frame in every ``HOLDOUT_EVERY`` goes to the held-out (evaluation) split.
HOLDOUT_EVERY = 5

RgbImage = NDArray[np.uint8]


class CalibrationInputError(ValueError):
    """A calibration path is missing or holds nothing usable."""


@dataclass(frozen=True, slots=True)
class Frame:
    source: str
    index: int
    rgb: RgbImage
    held_out: bool
    #: From the video's presence annotation: ``False`` = annotated empty (nobody in
    #: view), ``True`` = somebody there, ``None`` = not annotated or near a boundary.
    person_present: bool | None = None


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Videos and images named directly, plus the images and videos inside folders (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
            if not found:
                raise CalibrationInputError(f"{p}: folder holds no images or videos")
            out.extend(found)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                raise CalibrationInputError(
                    f"{p}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or image"
                )
            out.append(p)
        else:
            raise CalibrationInputError(f"{p}: no such file or folder")
    return sorted(set(out), key=str)


def presence_annotations(files: Sequence[Path]) -> list[str]:
    """Names of the presence annotations found beside the video inputs."""
    return [
        f.with_suffix(PRESENCE_SUFFIX).name
        for f in files
        if f.suffix.lower() in VIDEO_SUFFIXES and read_intervals(f) is not None
    ]


def inputs_digest(files: Sequence[Path]) -> str:
    """sha256 over (name, size, content sha256) of every input, in order."""
    h = hashlib.sha256()
    for f in files:
        content = hashlib.sha256(f.read_bytes()).hexdigest()
        h.update(f"{f.name}\0{f.stat().st_size}\0{content}\n".encode())
    return h.hexdigest()


def _video_frames(path: Path, max_frames: int) -> Iterator[tuple[int, RgbImage]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationInputError(f"{path}: cannot open video")
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = (
            set(np.linspace(0, total - 1, num=min(max_frames, total)).round().astype(int).tolist())
            if total > 0
            else None
        )
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            if wanted is None or index in wanted:
                ok, bgr = cap.retrieve()
                if ok:
                    rgb: RgbImage = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                    yield index, rgb
            index += 1
    finally:
        cap.release()


def read_frames(files: Sequence[Path], frames_per_video: int) -> list[Frame]:
    """All sampled frames of ``files``; every HOLDOUT_EVERY-th of each source is held out."""
    frames: list[Frame] = []
    images_seen = 0
    for f in files:
        if f.suffix.lower() in VIDEO_SUFFIXES:
            intervals = read_intervals(f)
            for n, (index, rgb) in enumerate(_video_frames(f, frames_per_video)):
                held = n % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
                present = None if intervals is None else frame_presence(index, intervals)
                frames.append(Frame(f.name, index, rgb, held_out=held, person_present=present))
        else:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:
                raise CalibrationInputError(f"{f}: cannot read image")
            held = images_seen % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
            image: RgbImage = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
            frames.append(Frame(f.name, 0, image, held_out=held))
            images_seen += 1
    if not frames:
        raise CalibrationInputError("no frames could be read from the calibration inputs")
    return frames
