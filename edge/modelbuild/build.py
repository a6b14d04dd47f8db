"""``edge-pose models build``: float originals + calibration footage -> int8 models + report.

Steps (each timed in the report): verify (or fetch) the float sources; read and
split the calibration frames; make detector inputs and, through the float
detector's ROIs, person and non-person crops; for each model prepare the graph,
gather activation ranges, quantise, post-process and check it is fully int8;
measure it against its float original on the held-out split; write the models,
``manifest.toml`` and ``BUILD_REPORT.md``/``.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge import models as edge_models
from edge import paths
from edge.modelbuild import (
    biascorrect,
    datasets,
    equalize,
    evaluate,
    frames,
    manifest_io,
    prepare,
    quantize,
    ranges,
)
from edge.modelbuild.recipes import RECIPES, ModelRecipe, range_policy
from edge.modelbuild.sources import fetch_all

logger = logging.getLogger(__name__)

DEFAULT_FRAMES_PER_VIDEO = 100
SEED = 0

Tensor = NDArray[np.float32]
ProgressFactory = Callable[[int, str], Any]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    calibration: tuple[Path, ...]
    out_dir: Path
    roles: tuple[str, ...] = ("detector", "lite", "lite-mixed")
    frames_per_video: int = DEFAULT_FRAMES_PER_VIDEO
    float_dir: Path | None = None
    seed: int = SEED
    #: Extra tracking-style jittered copies of each calibration person crop.
    person_jitter: int = 0
    #: Random non-person crops per calibration frame (held-out: always 1).
    non_person_per_frame: int = datasets.NON_PERSON_PER_FRAME


@dataclass(slots=True)
class BuildResult:
    report: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings = timings
        self.name = name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = round(time.perf_counter() - self.start, 2)


def no_progress(total: int, desc: str) -> Any:
    class _Null:
        def update(self, n: int = 1) -> None:
            pass

        def close(self) -> None:
            pass

    return _Null()


def float_detector_fn(model_bytes: bytes) -> datasets.DetectorFn:
    """The float detector (XNNPACK, 2 threads) as a function tensor -> (boxes, logits)."""
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(model_content=model_bytes, num_threads=2)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}

    def run(tensor: Tensor) -> tuple[Tensor, Tensor]:
        interp.set_tensor(inp, tensor)
        interp.invoke()
        boxes = np.array(interp.get_tensor(outs["Identity"]))[0]
        logits = np.array(interp.get_tensor(outs["Identity_1"]))[0]
        return boxes, logits

    return run


def run_model(path: Path, inputs: Sequence[Tensor], progress: Any) -> list[Tensor]:
    """Outputs (dequantised, stacked over inputs) of a model run with :mod:`edge.runtime`."""
    from edge.runtime import load_model

    model = load_model(path, num_threads=2)
    per_output: list[list[Tensor]] = [[] for _ in model.outputs]
    for x in inputs:
        model.set_input(x)
        model.invoke()
        for i in range(len(model.outputs)):
            per_output[i].append(model.output(i)[0])
        progress.update(1)
    return [np.stack(v) for v in per_output]


def _outputs_by_name(path: Path, stacked: list[Tensor]) -> dict[str, Tensor]:
    from edge.runtime import load_model

    return {o.name: stacked[i] for i, o in enumerate(load_model(path).outputs)}


def build_models(opts: BuildOptions, progress: ProgressFactory = no_progress) -> BuildResult:
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    float_dir = opts.float_dir or paths.float_models_dir()
    manifest_dir = (
        opts.out_dir if (opts.out_dir / "manifest.toml").is_file() else paths.models_dir()
    )
    unknown = [r for r in opts.roles if r not in RECIPES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(RECIPES)}")
    roles = tuple(sorted(set(opts.roles), key=list(RECIPES).index))
    if not roles:
        raise ValueError("no models to build")

    with _Timer(timings, "sources"):
        manifest = edge_models.read_manifest(manifest_dir)
        needed = sorted({RECIPES[r].source for r in ("detector", *roles)})
        fetch_all(manifest_dir, needed, float_dir)
    with _Timer(timings, "read_frames"):
        files = frames.expand_inputs(list(opts.calibration))
        digest = frames.inputs_digest(files)
        all_frames = frames.read_frames(files, opts.frames_per_video)
    float_paths = {
        r: float_dir / manifest.sources[RECIPES[r].source].file for r in ("detector", *roles)
    }
    with _Timer(timings, "prepare_detector"):
        det_original = float_paths["detector"].read_bytes()
        detector = float_detector_fn(det_original)
    with _Timer(timings, "samples"):
        bar = progress(len(all_frames), "crops (float detector ROIs)")
        calib = datasets.build_samples(
            all_frames,
            detector,
            held_out=False,
            seed=opts.seed,
            progress=bar.update,
            person_jitter=opts.person_jitter,
            non_person_per_frame=opts.non_person_per_frame,
        )
        held = datasets.build_samples(
            all_frames, detector, held_out=True, seed=opts.seed, progress=bar.update
        )
        bar.close()
    report_models: dict[str, Any] = {}
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    for role in roles:
        recipe = RECIPES[role]
        with _Timer(timings, f"{role}_prepare"):
            prepared = prepare.prepare_file(float_paths[role])
        scalings: list[equalize.StreamScaling] = []
        if recipe.equalize:
            with _Timer(timings, f"{role}_equalize"):
                prepared, scalings = equalize.equalize(prepared, _equalize_inputs(recipe, calib))
        in_names, _ = quantize.input_output_names(prepared)
        policy = range_policy(recipe, prepared, in_names[0])
        if recipe.calibration == "detector":
            calib_inputs = calib.detector
        else:
            calib_inputs = calib.person_crops + calib.non_person_crops
        with _Timer(timings, f"{role}_ranges"):
            bar = progress(len(calib_inputs), f"{role}: activation ranges")
            stats = ranges.collect_stats(prepared, calib_inputs, seed=opts.seed, progress=bar)
            bar.close()
            chosen = quantize.tie_data_move_ranges(prepared, ranges.choose_ranges(stats, policy))
            del stats
        with _Timer(timings, f"{role}_quantize"):
            int8 = quantize.quantize_int8(prepared, chosen, calib_inputs[0], recipe.float_ops)
            quantize.check_int8(int8, len(recipe.float_ops))
        out_path = opts.out_dir / edge_models.built_file_name(role)
        with _Timer(timings, f"{role}_evaluate_uncorrected"):
            # The lever's effect, measured: the same model before bias correction.
            uncorrected = out_path.with_name(f".{out_path.stem}.uncorrected.tflite")
            uncorrected.write_bytes(int8)
            try:
                before = _evaluate(role, float_paths[role], uncorrected, held, progress)
            finally:
                uncorrected.unlink()
        with _Timer(timings, f"{role}_bias_correction"):
            int8, fixes = _bias_correct(recipe, int8, prepared, calib)
            summary = quantize.check_int8(int8, len(recipe.float_ops))
        out_path.write_bytes(int8)
        with _Timer(timings, f"{role}_evaluate"):
            accuracy = _evaluate(role, float_paths[role], out_path, held, progress)
        report_models[role] = {
            "file": out_path.name,
            "sha256": edge_models.sha256_file(out_path),
            "size_bytes": out_path.stat().st_size,
            "source": recipe.source,
            "source_sha256": manifest.sources[recipe.source].sha256,
            "recipe": recipe.as_dict(),
            "calibration_samples": len(calib_inputs),
            "ops": summary.op_counts(),
            "input": {
                "scale": summary.inputs[0].scale,
                "zero_point": summary.inputs[0].zero_point,
            },
            "accuracy": accuracy,
            "accuracy_without_bias_correction": before,
            "bias_correction": [
                {"conv": f.conv_output.split(";")[0], "mean_abs_shift": f.mean_abs_shift}
                for f in fixes
            ],
        }
        if scalings:
            report_models[role]["equalized_streams"] = [
                {
                    "tensor": sc.first_tensor.split(";")[0],
                    "channels": sc.channels,
                    "scale_range": [round(sc.scale_min, 3), round(sc.scale_max, 3)],
                }
                for sc in scalings
            ]
    timings["total"] = round(time.perf_counter() - t_start, 2)
    report = {
        "calibration": {
            "inputs": [f.name for f in files],
            "annotations": frames.presence_annotations(files),
            "digest_sha256": digest,
            "frames": len(all_frames),
            "frames_per_video": opts.frames_per_video,
            "held_out_every": frames.HOLDOUT_EVERY,
            "seed": opts.seed,
            "person_jitter": opts.person_jitter,
            "non_person_per_frame": opts.non_person_per_frame,
            "calibration_split": {
                "detector_inputs": len(calib.detector),
                "person_crops": len(calib.person_crops),
                "non_person_crops": len(calib.non_person_crops),
            },
            "held_out_split": {
                "detector_inputs": len(held.detector),
                "person_crops": len(held.person_crops),
                "non_person_crops": len(held.non_person_crops),
                "detector_false_positive_crops": len(held.false_positive_crops),
            },
        },
        "tools": manifest_io.tool_versions(),
        "models": report_models,
        "timings_s": timings,
    }
    manifest_io.write_manifest(opts.out_dir, manifest, report)
    manifest_io.merge_earlier_models(opts.out_dir, report, edge_models.read_manifest(opts.out_dir))
    manifest_io.write_report(opts.out_dir, report)
    return BuildResult(report, timings)


def _equalize_inputs(recipe: ModelRecipe, calib: datasets.Samples) -> list[Tensor]:
    """Every 8th calibration input: enough to see each channel's range."""
    inputs = calib.detector if recipe.calibration == "detector" else calib.landmark_inputs()[0]
    return inputs[::8]


def _bias_correct(
    recipe: ModelRecipe, int8: bytes, prepared: bytes, calib: datasets.Samples
) -> tuple[bytes, list[biascorrect.HeadCorrection]]:
    if not recipe.bias_corrected:
        return int8, []
    if recipe.calibration == "detector":
        return biascorrect.correct_heads(
            int8, prepared, calib.detector, recipe.bias_corrected, biascorrect.detector_mask()
        )
    crops, is_person = calib.landmark_inputs()
    picked = biascorrect.pick_indices(len(crops))
    return biascorrect.correct_heads(
        int8,
        prepared,
        [crops[i] for i in picked],
        recipe.bias_corrected,
        biascorrect.landmark_mask(is_person[picked]),
    )


def _evaluate(
    role: str, float_path: Path, int8_path: Path, held: datasets.Samples, progress: ProgressFactory
) -> dict[str, Any]:
    if role == "detector":
        inputs = held.detector
        bar = progress(2 * len(inputs), "detector: float vs int8 (held out)")
        f = _outputs_by_name(float_path, run_model(float_path, inputs, bar))
        q = _outputs_by_name(int8_path, run_model(int8_path, inputs, bar))
        bar.close()
        return evaluate.detector_accuracy(
            f["Identity"], f["Identity_1"], q["Identity"], q["Identity_1"]
        ).as_dict()
    crops, is_person, is_false_positive = held.evaluation_inputs()
    bar = progress(2 * len(crops), f"{role}: float vs int8 (held out)")
    f = _outputs_by_name(float_path, run_model(float_path, crops, bar))
    q = _outputs_by_name(int8_path, run_model(int8_path, crops, bar))
    bar.close()
    return evaluate.landmark_accuracy(
        float_landmarks=f["Identity"],
        float_world=f["Identity_4"],
        float_flag=f["Identity_1"],
        int8_landmarks=q["Identity"],
        int8_world=q["Identity_4"],
        int8_flag=q["Identity_1"],
        is_person=is_person,
        is_false_positive=is_false_positive,
    ).as_dict()
