"""``edge-pose models evaluate``: the scoreboard of a candidate model pair.

The ``models`` command owns its parser; it calls :func:`register_evaluate` with
its sub-parsers to add ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EPILOG = """\
what it measures (candidate vs the float lite originals, in the same run):
  - PCK@0.2 and torso-normalised error on the human-annotated keypoint sets
    (DATA/keypoints: crop around each annotated person, static mode)
  - agreement with the float pipeline on development clips in tracking mode,
    by body part (mean and p95, in torso sizes)
  - pose-flag agreement on person crops and on non-person crops
  - landmark and detector invoke latency at 1 and 2 threads, relative to float

examples:
  edge-pose models evaluate                           # the built int8 models
  edge-pose models evaluate --landmark build/cand.tflite --name "mse ranges" \\
      --markdown models/report.md --append --json cand.json
  edge-pose models evaluate --max-frames 60 --no-flags  # a quick look
"""


def register_evaluate(models_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the ``models`` command's sub-parsers."""
    p: argparse.ArgumentParser = models_subparsers.add_parser(
        "evaluate",
        help="score a detector/landmark model pair against the float models",
        description="Score a candidate detector/landmark model pair against the float lite "
        "models and print one Markdown table (see issue 4's scoreboard).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--detector", type=Path, help="detector .tflite (default: the built int8 one)")
    p.add_argument("--landmark", type=Path, help="landmark .tflite (default: built int8 lite)")
    p.add_argument("--name", help="row title (default: the landmark file's name)")
    p.add_argument("--data", type=Path, help="shared data folder (default: ../shared/data)")
    p.add_argument(
        "--clip",
        action="append",
        dest="clips",
        metavar="PATH",
        help="development clip, relative to --data (repeatable; default video/dance.mp4)",
    )
    p.add_argument(
        "--sets",
        help="keypoint sets to score, comma-separated (default: aic,crowdpose,mpii,ochuman)",
    )
    p.add_argument("--max-frames", type=int, help="use only the first N frames of each clip")
    p.add_argument(
        "--threads", default="1,2", help="thread counts for latency, comma-separated (default 1,2)"
    )
    p.add_argument("--invokes", type=int, default=30, help="timed invokes per model (default 30)")
    p.add_argument("--no-flags", action="store_true", help="skip the pose-flag crops")
    p.add_argument("--markdown", type=Path, help="also write the Markdown table here")
    p.add_argument("--append", action="store_true", help="append to --markdown, not overwrite")
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args: argparse.Namespace) -> int:
    from edge import models
    from edge.eval.keypoints import DATASETS
    from edge.eval.scoreboard import (
        DEFAULT_CLIPS,
        render_markdown,
        score_candidate,
        scoreboard_to_dict,
    )

    unknown = [name for name in (args.sets or "").split(",") if name and name not in DATASETS]
    if unknown:
        print(
            f"edge-pose models evaluate: --sets: unknown {', '.join(unknown)} "
            f"(known: {', '.join(sorted(DATASETS))})",
            file=sys.stderr,
        )
        return 64
    detector = args.detector or models.model_path("detector", "int8")
    landmark = args.landmark or models.model_path("lite", "int8")
    for label, path in (("detector", detector), ("landmark", landmark)):
        if not Path(path).is_file():
            print(f"edge-pose models evaluate: {label} model {path} not found", file=sys.stderr)
            return 66
    try:
        threads = tuple(int(t) for t in str(args.threads).split(",") if t.strip())
    except ValueError:
        print(
            f"edge-pose models evaluate: --threads {args.threads!r}: not integers", file=sys.stderr
        )
        return 64
    board = score_candidate(
        Path(detector),
        Path(landmark),
        name=args.name,
        data_dir=args.data,
        clips=tuple(args.clips or DEFAULT_CLIPS),
        keypoint_sets=tuple(args.sets.split(",")) if args.sets else None,
        max_frames=args.max_frames,
        threads=threads,
        latency_invokes=args.invokes,
        flags=not args.no_flags,
        progress=sys.stderr.isatty(),
    )
    text = render_markdown(board)
    sys.stdout.write(text)
    if args.markdown:
        mode = "a" if args.append else "w"
        with open(args.markdown, mode, encoding="utf-8") as f:
            f.write(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(scoreboard_to_dict(board), indent=1, default=str) + "\n")
    return 0
