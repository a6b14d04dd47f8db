"""``--accuracy DIR``: PCK@0.2 and torso-normalised error, int8 and float side by side.

The protocol (crops, static mode, pose picking, pooling) is :mod:`edge.eval.protocol`;
this module runs it once per precision with the product's pipeline and shapes the
numbers for the report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edge.eval.metrics import PckScore

PRECISIONS = ("int8", "float")


def _pct(score: PckScore) -> float:
    value = score.percent
    return round(value, 2) if not math.isnan(value) else float("nan")


def score_dir(
    root: Path,
    model: str,
    threads: int,
    progress: bool = True,
    precisions: tuple[str, ...] = PRECISIONS,
) -> dict[str, Any]:
    """Score the keypoint sets under ``root`` (``aic/``, ``mpii/``, ...), int8 and float."""
    from edge.eval.keypoints import DATASETS, load_keypoint_sets
    from edge.eval.protocol import NUM_POSES, score_keypoints
    from edge.models import COMPLEXITY_NAMES
    from edge.pose import PoseOptions, build_pipeline
    from edge.runtime import ModelLoadError

    present = [
        name for name, (file_name, _) in DATASETS.items() if (root / name / file_name).is_file()
    ]
    if not present:
        raise FileNotFoundError(
            f"--accuracy {root}: no keypoint set found (expected one of "
            + ", ".join(f"{n}/{f}" for n, (f, _) in DATASETS.items())
            + ")"
        )
    persons = load_keypoint_sets(root, present)
    complexity = {str(name): c for c, name in COMPLEXITY_NAMES.items()}[model]
    by_precision: dict[str, Any] = {}
    for precision in precisions:
        options = PoseOptions(
            static_image_mode=True,
            model_complexity=complexity,
            smooth_landmarks=False,
            precision=precision,  # type: ignore[arg-type]
            num_threads=threads,
            num_poses=NUM_POSES,  # the protocol scores the pose closest to the annotation
        )
        try:
            pipeline = build_pipeline(options)
        except ModelLoadError as exc:
            by_precision[precision] = {"error": str(exc)}
            continue

        def run(rgb: Any, _p: Any = pipeline) -> Any:
            return _p.process(rgb, 0)

        if progress:
            import sys

            print(f"accuracy: {precision} on {len(persons)} annotated persons", file=sys.stderr)
        score = score_keypoints(persons, run)
        by_precision[precision] = {
            "pck": _pct(score.pck),
            "keypoints": score.pck.total,
            "mean_error_torso": round(score.error.mean, 4),
            "persons": score.persons,
            "persons_missed": score.persons_missed,
            "pck_by_dataset": {k: _pct(v) for k, v in score.pck_by_dataset.items()},
            "pck_by_part": {k: _pct(v) for k, v in score.pck_by_part.items()},
        }
    out: dict[str, Any] = {
        "dir": str(root),
        "datasets": present,
        "persons": len(persons),
        "model": model,
        "by_precision": by_precision,
    }
    if "pck" in by_precision.get("int8", {}) and "pck" in by_precision.get("float", {}):
        out["int8_minus_float_pck"] = round(
            by_precision["int8"]["pck"] - by_precision["float"]["pck"], 2
        )
    return out
