"""`edge-pose bench`: on-device benchmarks (the harness lives in the checkout's ``bench/``).

The options are defined here so that ``--help`` works anywhere; the harness itself
(``bench`` package: runs, MediaPipe comparison, reports, plots) is not part of the
wheel and is imported from the source checkout when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from edge.models import PRECISIONS

DESCRIPTION = """\
Measure the pose pipeline on this machine: per-stage latency (capture/decode,
preprocess, detector, landmark model, postprocess + filters, publish) p50/p95/p99,
end-to-end fps, capture-to-publish latency through a real broker, detector runs per
100 frames, CPU time per frame, peak RSS, start-up time, and the pipeline's overhead
over a bare landmark-model invoke. Each configuration runs in its own process.
Writes report.json, report.md and PNG plots to --out.
"""

EPILOG = """\
examples:
  edge-pose bench                                   # sample clip, lite int8, all cores
  edge-pose bench clip.mp4 --threads 1,2,4 --compare mediapipe
  edge-pose bench /dev/video0 --frames 600          # a USB camera (picamera2: "picamera2")
  edge-pose bench --matrix --frames 120             # model x precision x threads x delegate
  edge-pose bench --accuracy ../shared/data/keypoints
  edge-pose bench --against bench/results/raspberry-pi-5.json

Ratios (ours vs MediaPipe, pipeline vs bare model) are what to quote; absolute
numbers only together with the machine section of the report. See bench/README.md.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the pipeline (and MediaPipe side by side); JSON, Markdown, plots",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        nargs="?",
        help="video file, image folder, camera (/dev/video0, picamera2) or stream URL "
        "(default: the bundled sample clip)",
    )
    p.add_argument("--frames", type=int, default=300, help="frames per run (default 300)")
    p.add_argument("--warmup", type=int, default=5, help="frames left out of the statistics")
    p.add_argument(
        "--threads",
        metavar="N[,N...]",
        help="interpreter threads; a list runs one configuration each (default: all cores)",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="sweep model (lite/full/heavy) x precision (int8/float) x threads (1..cores) "
        "x delegate (cpu, edgetpu when present)",
    )
    p.add_argument("--model", choices=("lite", "full", "heavy"), default="lite")
    p.add_argument("--precision", choices=PRECISIONS, default="int8")
    p.add_argument("--delegate", choices=("cpu", "edgetpu"), default="cpu")
    p.add_argument(
        "--compare",
        choices=("mediapipe",),
        help="run MediaPipe's legacy solutions.pose on the same frames, interleaved "
        "(needs .venv-mediapipe with mediapipe==0.10.14)",
    )
    p.add_argument("--mediapipe-python", type=Path, help="python of the MediaPipe venv")
    p.add_argument(
        "--accuracy",
        metavar="DIR",
        help="score PCK@0.2 and torso-normalised error, int8 vs float, on keypoint sets in DIR",
    )
    p.add_argument(
        "--broker",
        default="embedded",
        metavar="embedded|URL|none",
        help="publish every frame to a broker: the embedded one (default), mqtt://HOST:PORT, "
        "or none (encode the payload only)",
    )
    p.add_argument("--out", metavar="DIR", help="report folder (default bench-out/<time>)")
    p.add_argument(
        "--against",
        metavar="FILE",
        help="compare with a reference report (bench/results/<board>.json); exit 1 on regressions",
    )
    p.add_argument(
        "--tolerance", type=float, default=0.15, help="regression band for --against (0.15 = 15%%)"
    )
    p.add_argument(
        "--bare-every",
        type=int,
        default=2,
        metavar="N",
        help="time a bare landmark-model invoke every N frames for the overhead ratio (0: off)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _checkout_root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def load_harness() -> Any:
    """Import ``bench.cli`` from the source checkout, or explain how to get it."""
    root = _checkout_root()
    if not (root / "bench" / "cli.py").is_file():
        raise ImportError(
            "edge-pose bench needs the source checkout: the harness (bench/) is not part of "
            "the installed package. Clone the repository, `pip install -e '.[bench]'` in it, "
            "and run `edge-pose bench` from that environment (see bench/README.md)."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("bench.cli")


def _run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.warmup < 0 or args.warmup >= args.frames:
        print("edge-pose bench: need --frames >= 1 and 0 <= --warmup < --frames", file=sys.stderr)
        return 2
    try:
        harness = load_harness()
    except ImportError as exc:
        print(f"edge-pose bench: {exc}", file=sys.stderr)
        return 2
    status: int = harness.run(args)
    return status
