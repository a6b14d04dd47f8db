"""One comparable table per candidate model pair (issue 4's scoreboard).

:func:`score_candidate` scores a detector/landmark pair against the float
originals *in the same run*:

* PCK@0.2 and torso-normalised error on the human-annotated keypoint sets
  (:mod:`edge.eval.protocol`), candidate and float side by side;
* agreement with the float pipeline on development clips in tracking mode
  (30 fps timestamps, smoothing on), by body part, mean and p95;
* pose-flag agreement with the float landmark model on person crops and on
  non-person crops (:mod:`edge.eval.flags`);
* invoke latency of both models at 1 and 2 threads, as a ratio to float.

:func:`render_markdown` turns the result into the Markdown block that
``edge-pose models evaluate`` prints and ``models/`` reports collect.
"""

from __future__ import annotations

import hashlib
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edge import models as model_paths
from edge.eval.flags import FlagAgreement, flag_agreement, nonperson_crops, person_crops, pose_flags
from edge.eval.keypoints import load_keypoint_sets
from edge.eval.metrics import Agreement
from edge.eval.protocol import NUM_POSES as KEYPOINT_NUM_POSES
from edge.eval.protocol import KeypointScore, score_keypoints
from edge.eval.reference import iter_video_rgb
from edge.eval.results import compare_streams, stream_from_results
from edge.pose.types import PoseResult

#: MediaPipe stamps video frames 33,333 us apart; the scoreboard does the same on both sides.
FRAME_INTERVAL_NS = 33_333_000
DEFAULT_CLIPS: tuple[str, ...] = ("video/dance.mp4",)


class Processor(Protocol):
    def process(self, image_rgb: NDArray[np.uint8], timestamp_ns: int) -> PoseResult: ...


#: Builds a pipeline from (detector path, landmark path, static_image_mode, num_poses).
PipelineFactory = Callable[[Path, Path, bool, int], Processor]


def default_data_dir() -> Path:
    """``EDGE_POSE_SHARED_DATA`` or ``../shared/data`` next to the source checkout."""
    import os

    env = os.environ.get("EDGE_POSE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def pipeline_for_models(
    detector_path: Path, landmark_path: Path, static: bool, num_poses: int = 1
) -> Processor:
    """The project's pose pipeline (lite graph, MediaPipe defaults) running the given files."""
    from edge.pose import PoseOptions, PosePipeline
    from edge.runtime.model import load_model

    options = PoseOptions(
        model_complexity=0, static_image_mode=static, num_poses=num_poses, num_threads=2
    )
    return PosePipeline(
        options,
        load_model(detector_path, num_threads=options.num_threads),
        load_model(landmark_path, num_threads=options.num_threads),
    )


@dataclass(frozen=True, slots=True)
class Latency:
    model: str
    threads: int
    candidate_ms: float
    float_ms: float

    @property
    def ratio(self) -> float:
        return self.candidate_ms / self.float_ms if self.float_ms > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class Scoreboard:
    name: str
    detector: str
    landmark: str
    detector_sha256: str
    landmark_sha256: str
    keypoints: KeypointScore
    keypoints_float: KeypointScore
    #: Clip name -> agreement of the candidate pipeline with the float pipeline.
    agreement: dict[str, Agreement]
    flags_person: FlagAgreement | None
    flags_nonperson: FlagAgreement | None
    latency: tuple[Latency, ...]
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def pck_delta(self) -> float:
        return self.keypoints.pck.percent - self.keypoints_float.pck.percent


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _progress(
    items: Iterable[Any], enabled: bool, desc: str, total: int | None = None
) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    bar: Iterable[Any] = tqdm(items, desc=desc, total=total, unit="frame", leave=False)
    return bar


def track_clip(
    pipeline: Processor, clip: Path, max_frames: int | None = None, progress: bool = False
) -> list[PoseResult]:
    """Run a tracking pipeline over a clip with 30 fps timestamps."""
    results = []
    frames = iter_video_rgb(clip)
    for i, rgb in enumerate(_progress(frames, progress, clip.name, max_frames)):
        if max_frames is not None and i >= max_frames:
            break
        results.append(pipeline.process(rgb, i * FRAME_INTERVAL_NS))
    return results


def invoke_latency_ms(
    candidate: Path, reference: Path, threads: int, invokes: int = 30, warmup: int = 3
) -> tuple[float, float]:
    """Median invoke time of two models, interleaved in one loop (same machine state)."""
    from edge.runtime.model import load_model

    models = [load_model(p, num_threads=threads) for p in (candidate, reference)]
    rng = np.random.default_rng(0)
    for m in models:
        shape = m.inputs[0].shape
        m.set_input(rng.uniform(0.0, 1.0, size=shape).astype(np.float32))
    times: list[list[float]] = [[], []]
    for k in range(warmup + invokes):
        for j, m in enumerate(models):
            t0 = time.perf_counter_ns()
            m.invoke()
            if k >= warmup:
                times[j].append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times[0]), statistics.median(times[1])


def score_candidate(
    detector_path: Path,
    landmark_path: Path,
    *,
    name: str | None = None,
    data_dir: Path | None = None,
    clips: Sequence[str] = DEFAULT_CLIPS,
    keypoint_sets: Sequence[str] | None = None,
    max_frames: int | None = None,
    threads: Sequence[int] = (1, 2),
    latency_invokes: int = 30,
    float_detector_path: Path | None = None,
    float_landmark_path: Path | None = None,
    factory: PipelineFactory = pipeline_for_models,
    flags: bool = True,
    max_nonperson_crops: int = 64,
    progress: bool = False,
) -> Scoreboard:
    """Score a candidate detector/landmark pair against the float lite pair, in one run.

    ``keypoint_sets`` limits the keypoint folders (default: all of
    :data:`edge.eval.keypoints.DATASETS`); ``max_frames`` the frames per clip.
    """
    data = Path(data_dir or default_data_dir())
    fdet = Path(float_detector_path or model_paths.model_path("detector", "float"))
    flm = Path(float_landmark_path or model_paths.model_path("lite", "float"))
    det, lm = Path(detector_path), Path(landmark_path)

    persons = load_keypoint_sets(data / "keypoints", keypoint_sets)
    static_c = factory(det, lm, True, KEYPOINT_NUM_POSES)
    static_f = factory(fdet, flm, True, KEYPOINT_NUM_POSES)
    kp_c = score_keypoints(persons, lambda rgb: static_c.process(rgb, 0))
    kp_f = score_keypoints(persons, lambda rgb: static_f.process(rgb, 0))

    agreement: dict[str, Agreement] = {}
    clip_samples: list[tuple[NDArray[np.uint8], PoseResult]] = []
    for clip in clips:
        path = data / clip
        ours = track_clip(factory(det, lm, False, 1), path, max_frames, progress)
        ref = track_clip(factory(fdet, flm, False, 1), path, max_frames, progress)
        agreement[path.name] = compare_streams(stream_from_results(ours), stream_from_results(ref))
        if flags:
            for i, rgb in enumerate(iter_video_rgb(path)):
                if i >= len(ref):
                    break
                if i % 8 == 0:
                    clip_samples.append((rgb, ref[i]))

    flags_person = flags_nonperson = None
    if flags:
        pcrops = person_crops(persons, clip_samples)
        ncrops = nonperson_crops(data, max_nonperson_crops)
        flags_person = flag_agreement(pose_flags(lm, pcrops), pose_flags(flm, pcrops))
        flags_nonperson = flag_agreement(pose_flags(lm, ncrops), pose_flags(flm, ncrops))

    latency = []
    for t in threads:
        for label, cand, ref_path in (("landmark", lm, flm), ("detector", det, fdet)):
            c_ms, f_ms = invoke_latency_ms(cand, ref_path, t, latency_invokes)
            latency.append(Latency(label, t, c_ms, f_ms))

    return Scoreboard(
        name=name or lm.stem,
        detector=str(det),
        landmark=str(lm),
        detector_sha256=_sha256(det),
        landmark_sha256=_sha256(lm),
        keypoints=kp_c,
        keypoints_float=kp_f,
        agreement=agreement,
        flags_person=flags_person,
        flags_nonperson=flags_nonperson,
        latency=tuple(latency),
        machine={"machine": platform.machine(), "python": platform.python_version()},
    )


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def render_markdown(board: Scoreboard) -> str:
    """One Markdown block per candidate, the same layout every run."""
    kc, kf = board.keypoints, board.keypoints_float
    lines = [
        f"### {board.name}",
        "",
        f"detector `{Path(board.detector).name}` ({board.detector_sha256[:12]}), "
        f"landmark `{Path(board.landmark).name}` ({board.landmark_sha256[:12]}); "
        f"{board.machine.get('machine', '?')}, Python {board.machine.get('python', '?')}",
        "",
        "| keypoints (PCK@0.2, torso-normalised error) | candidate | float | delta |",
        "|---|---:|---:|---:|",
        f"| PCK@0.2 pooled, % ({kc.pck.total} keypoints) | {_f(kc.pck.percent, 1)} "
        f"| {_f(kf.pck.percent, 1)} | {_f(board.pck_delta, 1)} |",
    ]
    for ds, score in kc.pck_by_dataset.items():
        ref = kf.pck_by_dataset[ds].percent
        lines.append(
            f"| PCK@0.2 {ds}, % | {_f(score.percent, 1)} | {_f(ref, 1)} "
            f"| {_f(score.percent - ref, 1)} |"
        )
    for part, score in kc.pck_by_part.items():
        ref = kf.pck_by_part[part].percent
        lines.append(
            f"| PCK@0.2 {part}, % | {_f(score.percent, 1)} | {_f(ref, 1)} "
            f"| {_f(score.percent - ref, 1)} |"
        )
    lines += [
        f"| torso error mean | {_f(kc.error.mean)} | {_f(kf.error.mean)} "
        f"| {_f(kc.error.mean - kf.error.mean)} |",
        f"| torso error p95 | {_f(kc.error.p95)} | {_f(kf.error.p95)} "
        f"| {_f(kc.error.p95 - kf.error.p95)} |",
        f"| persons missed (of {kc.persons}) | {kc.persons_missed} | {kf.persons_missed} "
        f"| {kc.persons_missed - kf.persons_missed} |",
        "",
    ]
    for clip, agr in board.agreement.items():
        lines += [
            f"Agreement with the float pipeline on `{clip}` (tracking, 30 fps stamps; "
            f"{agr.frames_compared}/{agr.frames} frames with both poses, "
            f"{agr.frames_reference_only} float-only, {agr.frames_candidate_only} candidate-only):",
            "",
            "| body part | mean (torso) | p95 (torso) | samples |",
            "|---|---:|---:|---:|",
            f"| **all** | {_f(agr.overall.mean)} | {_f(agr.overall.p95)} | {agr.overall.samples} |",
        ]
        lines += [
            f"| {part} | {_f(s.mean)} | {_f(s.p95)} | {s.samples} |"
            for part, s in agr.by_part.items()
        ]
        lines.append("")
    if board.flags_person is not None and board.flags_nonperson is not None:
        lines += [
            "| pose flag (>= 0.5) | crops | agreement with float | candidate says person "
            "| float says person |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, fa in (
            ("person crops", board.flags_person),
            ("non-person crops", board.flags_nonperson),
        ):
            lines.append(
                f"| {label} | {fa.crops} | {_f(100 * fa.agreement, 1)}% "
                f"| {_f(100 * fa.candidate_positive, 1)}% | {_f(100 * fa.reference_positive, 1)}% |"
            )
        lines.append("")
    lines += [
        "| invoke latency | threads | candidate ms | float ms | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {lat.model} | {lat.threads} | {_f(lat.candidate_ms, 2)} | {_f(lat.float_ms, 2)} "
        f"| {_f(lat.ratio, 2)} |"
        for lat in board.latency
    ]
    return "\n".join(lines) + "\n"


def scoreboard_to_dict(board: Scoreboard) -> dict[str, Any]:
    """JSON-ready form (dataclasses as dicts, plus the derived percentages and ratios)."""
    out: dict[str, Any] = asdict(board)
    out["pck_percent"] = board.keypoints.pck.percent
    out["pck_float_percent"] = board.keypoints_float.pck.percent
    out["pck_delta"] = board.pck_delta
    out["latency_ratio"] = {f"{lat.model}@{lat.threads}": lat.ratio for lat in board.latency}
    return out
