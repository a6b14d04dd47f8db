#!/usr/bin/env python3
"""MediaPipe's own legacy pose solution as a reference, writing edge-pose's result format.

Run it with the MediaPipe reference interpreter (``.venv-mediapipe/bin/python``,
mediapipe==0.10.14 with numpy<2). It must not import ``edge``: that venv has
none of edge's dependencies. Output lines follow ``edge/schema/result.v1.json``
(landmarks ``[x, y, z, visibility, presence]`` normalised; world ``[x, y, z]``).

Two ways to drive it:

* **files**: ``mediapipe_ref.py INPUT... --output ref.jsonl`` for a video file,
  image files or folders of images (sorted). ``--timings FILE`` adds one JSON
  line per frame with the wall and CPU time of ``process()`` and the peak RSS.
* **serve** (for tests and ``edge-pose bench --compare mediapipe``, which decode
  the frames themselves so both sides see the same pixels):
  ``mediapipe_ref.py --serve [options]``, then per frame write one JSON header
  line ``{"width": W, "height": H, "frame": i, "source": "..."}`` followed by
  ``W*H*3`` bytes of RGB uint8 to stdin; read one JSON line back:
  ``{"record": {...}, "process_ns": int, "cpu_ns": int, "max_rss_kb": int}``.
  An empty line or end of input stops it. A header may carry ``"reset": true``
  to start a fresh solution (new clip) before that frame.

The legacy solution downloads the lite and heavy landmark models at run time,
which fails without internet: the needed ``pose_landmark_*.tflite`` is copied
from ``--float-models`` (edge-pose's float cache) into the mediapipe package
first. In video mode MediaPipe stamps frames 33,333 us apart (30 fps) whatever
the real rate; ``ts_ms`` in the output records those stamps.

The legacy solution clears each landmark's ``presence`` before returning; this
script calls the solution graph directly so presence is kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

NUM_LANDMARKS = 33
MODEL_FILES = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
#: MediaPipe's simulated frame interval in video mode.
MEDIAPIPE_FRAME_INTERVAL_MS = 33.333
SIG_DIGITS = 5


def default_float_models_dir() -> Path:
    """Same rule as ``edge.paths.float_models_dir`` (kept in step by hand: no edge import here)."""
    env = os.environ.get("EDGE_POSE_CACHE_DIR")
    if env:
        return Path(env) / "float"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "edge-pose" / "float"


def install_landmark_model(model_complexity: int, float_models_dir: Path) -> Path:
    """Copy the landmark model MediaPipe would download into its package folder, if missing."""
    import mediapipe

    name = MODEL_FILES[model_complexity]
    target_dir = Path(mediapipe.__file__).resolve().parent / "modules" / "pose_landmark"
    target = target_dir / name
    if not target.is_file():
        source = float_models_dir / name
        if not source.is_file():
            raise FileNotFoundError(
                f"{name} is missing from MediaPipe and from {float_models_dir}; "
                "run `edge-pose models fetch` or pass --float-models"
            )
        tmp = target.with_suffix(".tflite.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return target


def _round(value: float) -> float:
    if value == 0.0 or math.isnan(value):
        return 0.0
    return float(f"{value:.{SIG_DIGITS}g}")


class Reference:
    """One MediaPipe legacy pose solution, fed frame by frame."""

    def __init__(self, args: argparse.Namespace) -> None:
        install_landmark_model(args.model_complexity, Path(args.float_models))
        self._args = args
        self._pose: Any = None
        self.reset()

    def reset(self) -> None:
        import mediapipe as mp

        if self._pose is not None:
            self._pose.close()
        a = self._args
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=a.static,
            model_complexity=a.model_complexity,
            smooth_landmarks=not a.no_smooth,
            enable_segmentation=False,
            min_detection_confidence=a.min_detection_confidence,
            min_tracking_confidence=a.min_tracking_confidence,
        )
        self._count = 0

    def process(self, rgb: np.ndarray, frame: int, source: str) -> tuple[dict[str, Any], int, int]:
        """Returns the result record, wall ns and CPU ns of the solution's process call."""
        from mediapipe.python.solution_base import SolutionBase

        rgb = np.ascontiguousarray(rgb)
        wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
        # SolutionBase.process, not Pose.process: the latter clears `presence`.
        out = SolutionBase.process(self._pose, input_data={"image": rgb})
        wall_ns, cpu_ns = time.perf_counter_ns() - wall0, time.process_time_ns() - cpu0
        poses = []
        if out.pose_landmarks:
            lms = [
                [_round(p.x), _round(p.y), _round(p.z), _round(p.visibility), _round(p.presence)]
                for p in out.pose_landmarks.landmark
            ]
            world = (
                [[_round(p.x), _round(p.y), _round(p.z)] for p in out.pose_world_landmarks.landmark]
                if out.pose_world_landmarks
                else [[0.0, 0.0, 0.0]] * NUM_LANDMARKS
            )
            # The legacy solution does not expose its pose flag; it only reports
            # a pose when the flag passed min_tracking_confidence.
            poses.append({"id": 0, "score": 1.0, "landmarks": lms, "world": world})
        ts_ms = 0.0 if self._args.static else round(self._count * MEDIAPIPE_FRAME_INTERVAL_MS, 3)
        self._count += 1
        record = {
            "v": 1,
            "frame": frame,
            "ts_ms": ts_ms,
            "source": source,
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "poses": poses,
        }
        return record, wall_ns, cpu_ns

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


def max_rss_kb() -> int:
    """Peak RSS of this process (VmHWM): ru_maxrss would include the parent's from before exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def iter_inputs(inputs: list[str]) -> Iterator[tuple[int, str, np.ndarray]]:
    """(frame index, source name, RGB frame) over videos, images and folders of images."""
    frame = 0
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files = [path]
        for file in files:
            if file.suffix.lower() in IMAGE_SUFFIXES:
                bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f"cannot read image {file}")
                yield frame, file.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                frame += 1
                continue
            cap = cv2.VideoCapture(str(file))
            if not cap.isOpened():
                raise ValueError(f"cannot open video {file}")
            try:
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    yield frame, str(file), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    frame += 1
            finally:
                cap.release()


def run_files(args: argparse.Namespace) -> int:
    ref = Reference(args)
    out = open(args.output, "w", encoding="utf-8") if args.output != "-" else sys.stdout  # noqa: SIM115
    timings = open(args.timings, "w", encoding="utf-8") if args.timings else None  # noqa: SIM115
    try:
        for frame, source, rgb in iter_inputs(args.inputs):
            record, wall_ns, cpu_ns = ref.process(rgb, frame, source)
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            if timings is not None:
                line = {
                    "frame": frame,
                    "process_ns": wall_ns,
                    "cpu_ns": cpu_ns,
                    "max_rss_kb": max_rss_kb(),
                }
                timings.write(json.dumps(line) + "\n")
    finally:
        ref.close()
        if out is not sys.stdout:
            out.close()
        if timings is not None:
            timings.close()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    ref = Reference(args)
    stdin, stdout = sys.stdin.buffer, sys.stdout
    try:
        while True:
            header_line = stdin.readline()
            if not header_line.strip():
                return 0
            header = json.loads(header_line)
            width, height = int(header["width"]), int(header["height"])
            size = width * height * 3
            data = stdin.read(size)
            if len(data) != size:
                print(f"mediapipe_ref: short frame ({len(data)} of {size} bytes)", file=sys.stderr)
                return 1
            if header.get("reset"):
                ref.reset()
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
            record, wall_ns, cpu_ns = ref.process(
                rgb, int(header.get("frame", 0)), str(header.get("source", ""))
            )
            reply = {
                "record": record,
                "process_ns": wall_ns,
                "cpu_ns": cpu_ns,
                "max_rss_kb": max_rss_kb(),
            }
            stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
            stdout.flush()
    finally:
        ref.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Run MediaPipe's legacy pose solution (mediapipe==0.10.14) and write "
        "edge-pose result records (JSON Lines).",
        epilog="examples:\n"
        "  .venv-mediapipe/bin/python bench/mediapipe_ref.py clip.mp4 --output ref.jsonl\n"
        "  .venv-mediapipe/bin/python bench/mediapipe_ref.py a.jpg --static --model-complexity 1\n"
        "  .venv-mediapipe/bin/python bench/mediapipe_ref.py --serve < frames.bin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", help="video files, image files or folders of images")
    p.add_argument("-o", "--output", default="-", help="JSON Lines output (default stdout)")
    p.add_argument("--serve", action="store_true", help="read frames from stdin (see module doc)")
    p.add_argument("--static", action="store_true", help="static_image_mode (no tracking)")
    p.add_argument(
        "--model-complexity",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="0 lite (default), 1 full, 2 heavy",
    )
    p.add_argument("--no-smooth", action="store_true", help="smooth_landmarks=False")
    p.add_argument("--min-detection-confidence", type=float, default=0.5)
    p.add_argument("--min-tracking-confidence", type=float, default=0.5)
    p.add_argument(
        "--float-models",
        default=str(default_float_models_dir()),
        help="folder with pose_landmark_{lite,full,heavy}.tflite (default: edge-pose's cache)",
    )
    p.add_argument(
        "--timings", help="with files: also write per-frame process time and peak RSS here"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        return run_serve(args)
    if not args.inputs:
        build_parser().error("give INPUT files or --serve")
    return run_files(args)


if __name__ == "__main__":
    sys.exit(main())
