"""``edge-pose process``: run the pose pipeline over video files, images and folders.

Writes one version-1 JSON record per frame (``edge.result_format``) to a JSON
Lines file, optionally the frames with the skeleton drawn, and a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from edge.models import PRECISIONS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from edge.pose import PosePipeline

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MODEL_NAMES = {"lite": 0, "full": 1, "heavy": 2}
#: sysexits EX_DATAERR: a model file is missing or corrupt (as `edge-pose run`).
EX_DATAERR = 65

DESCRIPTION = """\
Run the pose pipeline over video files, image files and folders of images, and write
one JSON object per frame (JSON Lines; format v1, schema in edge/schema/result.v1.json).

Videos are tracked frame to frame (the detector runs only when a person is lost or
needs re-checking), with timestamps from the file's frame rate. Every image is its
own stream; --static also skips tracking logic, as MediaPipe's static_image_mode does.
"""

EPILOG = """\
examples:
  edge-pose process clip.mp4 --output poses.jsonl
  edge-pose process clip.mp4 --output poses.jsonl --annotate clip.annotated.mp4
  edge-pose process photos/ --static --num-poses 3 --output poses.jsonl --annotate out/
  edge-pose process clip.mp4 --precision float --model full --output ref.jsonl
  edge-pose process a.mp4 b.mp4 --output all.jsonl --summary summary.json

output: each line is {"v": 1, "frame": N, "ts_ms": T, "source": S, "width": W,
"height": H, "poses": [{"id", "score", "landmarks": 33 x [x, y, z, visibility,
presence], "world": 33 x [x, y, z]}]}; x, y are normalised to the frame, world
landmarks are metres. "source" is the image file name for images and folders, the
video file otherwise. --annotate writes a video for a video input (a file path, or
a folder for several inputs) and images into a folder for image inputs.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "process",
        help="run the pose pipeline over videos, images and folders (JSON Lines out)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, images or folders")
    p.add_argument(
        "-o", "--output", default="-", help="JSON Lines file to write (default: standard output)"
    )
    p.add_argument("--annotate", metavar="OUT", help="write frames with the skeleton drawn")
    p.add_argument("--num-poses", type=int, default=1, help="people to track (default 1)")
    p.add_argument(
        "--model", choices=sorted(MODEL_NAMES), default="lite", help="landmark model (default lite)"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="int8",
        help="int8 built models (default), the float originals, or mixed (lite: int8 with "
        "float layers, closer to float)",
    )
    p.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    p.add_argument(
        "--static", action="store_true", help="treat every frame as unrelated (no tracking)"
    )
    p.add_argument("--no-smooth", action="store_true", help="do not smooth landmarks over time")
    p.add_argument(
        "--min-detection-confidence", type=float, default=0.5, help="detector score (default 0.5)"
    )
    p.add_argument(
        "--min-tracking-confidence", type=float, default=0.5, help="pose flag (default 0.5)"
    )
    p.add_argument("--summary", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


@dataclass(frozen=True, slots=True)
class _Item:
    """One input stream: a video file or one image."""

    path: Path
    kind: str  # "video" | "image"
    #: Index of the image within its folder (frame number of the record).
    index: int = 0


def expand_inputs(inputs: list[str]) -> list[_Item]:
    """Videos, images, and the images of folders (sorted by name); ValueError otherwise."""
    items: list[_Item] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise ValueError(
                    f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            items += [_Item(p, "image", i) for i, p in enumerate(images)]
        elif not path.exists():
            raise ValueError(f"{path}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            items.append(_Item(path, "image"))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            items.append(_Item(path, "video"))
        else:
            raise ValueError(f"{path}: not a video or image file (by its suffix)")
    return items


def _read_image(path: Path) -> NDArray[np.uint8]:
    import cv2
    import numpy as np

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: cannot decode image")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _video_frames(path: Path) -> Iterator[tuple[int, int, NDArray[np.uint8]]]:
    """(frame index, media timestamp ns, RGB) of every frame of a video file."""
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not 1.0 <= fps <= 1000.0:
        fps = 30.0
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield (
                index,
                round(index * 1e9 / fps),
                np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)),
            )
            index += 1
    finally:
        cap.release()


def _video_info(path: Path) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    return max(count, 0), fps if 1.0 <= fps <= 1000.0 else 30.0


class _Annotator:
    """Writes annotated frames: a video per video input, image files for images."""

    def __init__(self, out: Path, items: list[_Item]) -> None:
        self.out = out
        videos = [i for i in items if i.kind == "video"]
        self.single_video = (
            len(videos) == 1 and len(items) == 1 and out.suffix.lower() in VIDEO_SUFFIXES
        )
        self._writer: Any = None
        self._writer_path: Path | None = None

    def _video_path(self, item: _Item) -> Path:
        if self.single_video:
            return self.out
        return self.out / f"{item.path.stem}.annotated.mp4"

    def frame(self, item: _Item, rgb: NDArray[np.uint8], poses: Any, fps: float) -> None:
        import cv2
        import numpy as np

        from edge.annotate import draw_poses

        bgr = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)
        draw_poses(bgr, poses)
        if item.kind == "image":
            self.out.mkdir(parents=True, exist_ok=True)
            target = self.out / item.path.name
            if not cv2.imwrite(str(target), bgr):
                raise ValueError(f"{target}: cannot write image")
            return
        path = self._video_path(item)
        if self._writer_path != path:
            self.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(path), fourcc, fps, (bgr.shape[1], bgr.shape[0]))
            if not self._writer.isOpened():
                raise ValueError(f"{path}: cannot open video writer")
            self._writer_path = path
        self._writer.write(bgr)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
        self._writer = None
        self._writer_path = None


@dataclass(slots=True)
class _Totals:
    frames: int = 0
    frames_with_pose: int = 0
    process_ns: int = 0


def _process_items(
    pipeline: PosePipeline,
    items: list[_Item],
    out: IO[str],
    annotator: _Annotator | None,
    progress: Any,
) -> _Totals:
    from edge.result_format import dumps, to_record

    totals = _Totals()
    for item in items:
        pipeline_reset = True
        if item.kind == "image":
            frames: Any = [(item.index, 0, _read_image(item.path))]
            source, fps = item.path.name, 30.0
        else:
            frames = _video_frames(item.path)
            source, fps = str(item.path), _video_info(item.path)[1]
        for index, timestamp_ns, rgb in frames:
            if pipeline_reset:
                pipeline.reset_stream()
                pipeline_reset = False
            t0 = time.perf_counter_ns()
            result = pipeline.process(rgb, timestamp_ns)
            totals.process_ns += time.perf_counter_ns() - t0
            totals.frames += 1
            totals.frames_with_pose += bool(result.poses)
            out.write(dumps(to_record(result, index, source)) + "\n")
            if annotator is not None:
                annotator.frame(item, rgb, result.poses, fps)
            progress.update(1)
    return totals


def _total_frames(items: list[_Item]) -> int:
    return sum(1 if i.kind == "image" else _video_info(i.path)[0] for i in items)


def _run(args: argparse.Namespace) -> int:
    try:
        return _process(args)
    except OSError as exc:  # a full disk, a folder that is not writable: one line, exit 1
        name = exc.filename or args.output
        print(f"edge-pose process: cannot write {name}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _process(args: argparse.Namespace) -> int:
    from edge.pose import PoseOptions, build_pipeline
    from edge.runtime import ModelLoadError

    try:
        items = expand_inputs(list(args.inputs))
        options = PoseOptions(
            static_image_mode=args.static,
            model_complexity=MODEL_NAMES[args.model],
            smooth_landmarks=not args.no_smooth,
            min_detection_confidence=args.min_detection_confidence,
            min_tracking_confidence=args.min_tracking_confidence,
            num_poses=args.num_poses,
            precision=args.precision,
            num_threads=args.threads,
        )
    except ValueError as exc:
        print(f"edge-pose process: {exc}", file=sys.stderr)
        return 2
    if options.precision != "float":
        # The same start-up check as the daemon: a corrupt model fails here, by name.
        from edge.models import ModelIntegrityError, check_models, runtime_roles

        try:
            check_models(roles=runtime_roles(args.model, options.precision))
        except ModelIntegrityError as exc:
            print(f"edge-pose process: {exc}", file=sys.stderr)
            return EX_DATAERR
    try:
        pipeline = build_pipeline(options)
    except ModelLoadError as exc:
        print(f"edge-pose process: {exc}", file=sys.stderr)
        return 1

    from tqdm import tqdm

    annotator = _Annotator(Path(args.annotate), items) if args.annotate else None
    out: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    progress = tqdm(
        total=_total_frames(items),
        unit="frame",
        disable=args.no_progress or None,
        file=sys.stderr,
        desc="process",
    )
    try:
        totals = _process_items(pipeline, items, out, annotator, progress)
    except ValueError as exc:
        print(f"edge-pose process: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.close()
        if annotator is not None:
            annotator.close()
        if out is not sys.stdout:
            out.close()
    summary = {
        "frames": totals.frames,
        "frames_with_pose": totals.frames_with_pose,
        "detector_runs": pipeline.detector_runs,
        "mean_ms_per_frame": round(totals.process_ns / max(totals.frames, 1) / 1e6, 3),
    }
    print(
        "frames {frames}  with a pose {frames_with_pose}  detector runs {detector_runs}  "
        "mean {mean_ms_per_frame} ms/frame".format(**summary),
        file=sys.stderr,
    )
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0
