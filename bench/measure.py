"""One benchmark run: one configuration of our pipeline (optionally with MediaPipe
interleaved), in its own process so that peak RSS and start-up time are its own.

``python -m bench.measure CONFIG.json`` prints the run's JSON record on stdout (the
progress bar goes to stderr). :func:`bench.runner.run_config` starts it.

Per frame, in order: capture/decode (timed), our pipeline (``stage_ns`` from the
pipeline itself), publish (encode + send), then, outside the timed end-to-end window,
a bare landmark-model invoke (every ``bare_every`` frames, in its own process:
:mod:`bench.bare_worker`) and the same RGB frame to the MediaPipe process.
CPU time is ``time.process_time_ns`` (this process, all threads) around each
window; the MediaPipe process measures its own the same way.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Names of the stages in the report, in pipeline order. The pipeline's own
#: ``stage_ns`` keys are mapped onto them by :func:`stage_group`.
STAGES: tuple[str, ...] = (
    "capture",
    "preprocess",
    "detector",
    "landmark",
    "postprocess",
    "publish",
)


@dataclass(frozen=True, slots=True)
class RunConfig:
    source: str
    frames: int
    warmup: int
    model: str
    precision: str
    threads: int
    delegate: str
    #: ``mqtt://host:port`` or None (encode only).
    broker: str | None
    compare_mediapipe: bool
    #: A bare landmark-model invoke every N frames (0: off).
    bare_every: int
    #: perf_counter_ns (CLOCK_MONOTONIC) when the parent started this run.
    spawn_ns: int
    progress: bool = True
    float_dir: str | None = None
    mediapipe_python: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model}-{self.precision}-{self.delegate}-t{self.threads}"


def stage_group(key: str) -> str:
    """Map a pipeline ``stage_ns`` key onto a report stage."""
    k = key.lower()
    if "detect" in k or "nms" in k or "anchor" in k:
        return "detector"
    if "pre" in k or "crop" in k or "warp" in k or "letterbox" in k:
        return "preprocess"
    if "landmark" in k or "invoke" in k:
        return "landmark"
    return "postprocess"


def _peak_rss_kib() -> int:
    """This process's peak RSS: ``VmHWM``, not ``ru_maxrss``, which Linux carries over
    from the parent across fork and exec (the bench parent would leak into it)."""
    from bench.procs import vm_kib

    hwm = vm_kib("VmHWM")
    return hwm if hwm is not None else int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(cfg: RunConfig) -> dict[str, Any]:
    from tqdm import tqdm

    from bench import machine
    from bench.parts import build_pipeline, iter_frames, make_sink
    from bench.stats import rolling_fps, summarise_ns

    t_start = cfg.spawn_ns or time.perf_counter_ns()
    rss_at_start = _peak_rss_kib()  # interpreter + numpy + this module
    snap_before = machine.snapshot()
    t0 = time.perf_counter_ns()
    pipeline = build_pipeline(cfg.model, cfg.precision, cfg.threads, cfg.delegate)
    pipeline_build_ns = time.perf_counter_ns() - t0
    sink = make_sink(cfg.broker, Path(cfg.source).name)
    rss_after_build = _peak_rss_kib()

    bare = None
    if cfg.bare_every > 0:
        from bench.bare_worker import BareModel
        from edge.models import model_path

        bare = BareModel(
            model_path(cfg.model, cfg.precision),  # type: ignore[arg-type]
            cfg.threads,
            cfg.delegate,
        )

    fed = None
    if cfg.compare_mediapipe:
        # Our pipeline alone, fed the decoded frames as MediaPipe is: the memory footing
        # of the headline RSS ratio (this process keeps the decoder and the publisher).
        from bench.pipeline_server import PipelineProcess

        fed = PipelineProcess(cfg.model, cfg.precision, cfg.threads, cfg.delegate)

    mp = None
    if cfg.compare_mediapipe:
        from bench.mediapipe_client import DEFAULT_PYTHON, MediaPipeWorker

        complexity = {"lite": 0, "full": 1, "heavy": 2}[cfg.model]
        mp = MediaPipeWorker(
            complexity,
            Path(cfg.float_dir) if cfg.float_dir else None,
            Path(cfg.mediapipe_python) if cfg.mediapipe_python else DEFAULT_PYTHON,
        )

    rows: list[dict[str, Any]] = []
    stage_keys: set[str] = set()
    bare_cpu: list[int] = []
    bare_wall: list[int] = []
    mp_rows: list[dict[str, Any]] = []
    ours_lm: list[NDArray[np.float32] | None] = []
    mp_lm: list[NDArray[np.float32] | None] = []
    width = height = 0
    first_landmarks_ns: int | None = None
    first_publish_ns: int | None = None
    detector_flags = 0
    frames = iter_frames(cfg.source, cfg.frames)
    bar = tqdm(
        total=cfg.frames,
        desc=cfg.label,
        unit="frame",
        disable=not cfg.progress,
        file=sys.stderr,
        leave=False,
    )
    cpu_loop0 = time.process_time_ns()
    wall_loop0 = time.perf_counter_ns()
    i = 0
    while True:
        c_cap = time.process_time_ns()
        frame = next(frames, None)
        if frame is None:
            break
        height, width = frame.rgb.shape[:2]
        s0 = sink.thread_cpu_ns()
        c0 = time.process_time_ns()
        w0 = time.perf_counter_ns()
        result = pipeline.process(frame.rgb, frame.timestamp_ns)
        w1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        # the publisher's threads still encoding/sending the previous frame
        sink_cpu = sink.thread_cpu_ns() - s0
        sink.publish(result, i)
        w2 = time.perf_counter_ns()
        c2 = time.process_time_ns()
        if first_publish_ns is None:
            first_publish_ns = w2 - t_start
        if result.poses and first_landmarks_ns is None:
            first_landmarks_ns = w2 - t_start
        stage_keys.update(result.stage_ns)
        detector_flags += int(result.detector_ran)
        rows.append(
            {
                "capture_start_ns": frame.capture_start_ns,
                "capture_ns": frame.capture_ns,
                "process_ns": w1 - w0,
                "stage_ns": dict(result.stage_ns),
                "publish_ns": w2 - w1,
                "e2e_ns": w2 - frame.capture_start_ns,
                "cpu_capture_ns": c0 - c_cap,
                "cpu_pipeline_ns": c1 - c0 - sink_cpu,
                "cpu_publish_ns": c2 - c1 + sink_cpu,
                "cpu_publisher_threads_in_pipeline_ns": sink_cpu,
                "detector_ran": bool(result.detector_ran),
                "poses": len(result.poses),
                "publish_end_ns": w2,
            }
        )
        ours_lm.append(result.poses[0].landmarks.copy() if result.poses else None)
        if bare is not None and i % cfg.bare_every == 0:
            b_cpu, b_wall = bare.invoke()
            if i >= cfg.warmup:
                bare_cpu.append(b_cpu)
                bare_wall.append(b_wall)
        if fed is not None:
            fed.process(frame.rgb, frame.timestamp_ns)
        if mp is not None:
            r = mp.process(frame.rgb, Path(cfg.source).name)
            mp_rows.append(
                {"wall_ns": r.wall_ns, "cpu_ns": r.cpu_ns, "peak_rss_kib": r.peak_rss_kib}
            )
            mp_lm.append(r.landmarks)
        i += 1
        bar.update(1)
    bar.close()
    wall_loop = time.perf_counter_ns() - wall_loop0
    cpu_loop = time.process_time_ns() - cpu_loop0
    sink_stats = sink.close()
    snap_after = machine.snapshot()
    if not rows:
        raise RuntimeError(f"no frames could be read from {cfg.source!r}")

    measured = rows[cfg.warmup :] if len(rows) > cfg.warmup else rows
    n = len(measured)
    stages: dict[str, list[int]] = {s: [0] * n for s in STAGES}
    raw_stages: dict[str, list[int]] = {k: [0] * n for k in sorted(stage_keys)}
    unattributed: list[int] = []
    for j, row in enumerate(measured):
        stages["capture"][j] = row["capture_ns"]
        stages["publish"][j] = row["publish_ns"]
        for key, ns in row["stage_ns"].items():
            stages[stage_group(key)][j] += int(ns)
            raw_stages[key][j] = int(ns)
        unattributed.append(row["process_ns"] - sum(int(v) for v in row["stage_ns"].values()))
    e2e = [r["e2e_ns"] for r in measured]
    e2e_sum = float(sum(e2e))
    stage_report: dict[str, Any] = {}
    for name in STAGES:
        vals = stages[name]
        nonzero = [v for v in vals if v > 0]
        entry = summarise_ns(nonzero)
        entry["per_frame_mean_ms"] = round(sum(vals) / n / 1e6, 4)
        entry["share_of_e2e"] = round(sum(vals) / e2e_sum, 4) if e2e_sum else 0.0
        stage_report[name] = entry
    cpu_pipeline = np.array([r["cpu_pipeline_ns"] for r in measured], dtype=np.float64)
    cpu_frame = np.array(
        [r["cpu_capture_ns"] + r["cpu_pipeline_ns"] + r["cpu_publish_ns"] for r in measured],
        dtype=np.float64,
    )
    process = [r["process_ns"] for r in measured]
    detector_runs_counter = int(getattr(pipeline, "detector_runs", -1))

    out: dict[str, Any] = {
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("spawn_ns", "progress")},
        "label": cfg.label,
        "frames": len(rows),
        "frames_measured": n,
        "frame_size": [width, height],
        "frames_with_pose": sum(1 for r in rows if r["poses"]),
        "stages": stage_report,
        "pipeline_stage_keys": {k: stage_group(k) for k in sorted(stage_keys)},
        "pipeline_stages_raw": {
            k: summarise_ns([v for v in vs if v > 0]) for k, vs in raw_stages.items()
        },
        "unattributed": summarise_ns([max(0, u) for u in unattributed]),
        "end_to_end": summarise_ns(e2e),
        "pipeline": summarise_ns(process),
        "capture_to_publish": summarise_ns(e2e),
        "throughput_fps": round(n * 1e9 / e2e_sum, 3),
        "pipeline_fps": round(n * 1e9 / float(sum(process)), 3),
        "loop_wall_s": round(wall_loop / 1e9, 3),
        "detector": {
            "runs_flagged": detector_flags,
            "runs_counter": detector_runs_counter,
            "per_100_frames": round(100.0 * detector_flags / len(rows), 3),
        },
        "cpu": {
            "pipeline_ms_per_frame": round(float(cpu_pipeline.mean()) / 1e6, 4),
            "frame_ms_per_frame": round(float(cpu_frame.mean()) / 1e6, 4),
            # publisher threads' CPU during the pipeline window, moved to publishing
            "publisher_threads_in_pipeline_ms_per_frame": round(
                float(np.mean([r["cpu_publisher_threads_in_pipeline_ns"] for r in measured])) / 1e6,
                4,
            ),
            "loop_total_s": round(cpu_loop / 1e9, 3),
        },
        "memory": {
            "peak_rss_mb": round(_peak_rss_kib() / 1024.0, 2),
            "rss_at_start_mb": round(rss_at_start / 1024.0, 2),
            "rss_after_build_mb": round(rss_after_build / 1024.0, 2),
        },
        "startup": {
            "pipeline_build_s": round(pipeline_build_ns / 1e9, 4),
            "first_publish_s": round((first_publish_ns or 0) / 1e9, 4),
            "first_landmarks_s": round(first_landmarks_ns / 1e9, 4) if first_landmarks_ns else None,
        },
        "machine": {
            "before": snap_before,
            "after": snap_after,
            "throttled": machine.flag_throttled(snap_before, snap_after),
        },
        "publish": sink_stats or {},
        "samples_ms": {
            **{s: [round(v / 1e6, 4) for v in stages[s]] for s in STAGES},
            "end_to_end": [round(v / 1e6, 4) for v in e2e],
            "pipeline": [round(v / 1e6, 4) for v in process],
            "cpu_pipeline": [round(float(v) / 1e6, 4) for v in cpu_pipeline],
        },
        "fps_timeline": rolling_fps(e2e),
        "capture_start_ns": [r["capture_start_ns"] for r in rows],
        "spawn_ns": t_start,
    }
    if bare is not None:
        bare.close()
    if bare_cpu:
        bare_cpu_ms = float(np.mean(bare_cpu)) / 1e6
        bare_wall_ms = float(np.mean(bare_wall)) / 1e6
        out["bare_landmark"] = {
            "invokes": len(bare_cpu),
            "cpu_ms": round(bare_cpu_ms, 4),
            "wall": summarise_ns(bare_wall),
        }
        out["overhead_ratio"] = {
            "cpu": round(out["cpu"]["pipeline_ms_per_frame"] / bare_cpu_ms, 4),
            "wall": round(float(np.mean(process)) / 1e6 / bare_wall_ms, 4),
            "target": 1.15,
        }
    if fed is not None:
        fed_memory = fed.close()
        out["memory"]["pipeline_process"] = {
            **fed_memory,
            "frames_with_pose": sum(1 for p in fed.poses if p),
            "cpu_ms_per_frame": round(
                float(np.mean(fed.cpu_ns[cfg.warmup :] or fed.cpu_ns)) / 1e6, 4
            ),
            "what": "edge.pose pipeline alone, fed the decoded frames (MediaPipe's footing)",
        }
        if "overhead_ratio" in out:
            # the same ratio with the pipeline in its own process, as the bare model is
            # (no decoder, publisher or bench work sharing its caches and CPU clock)
            alone = out["memory"]["pipeline_process"]["cpu_ms_per_frame"]
            out["overhead_ratio"]["cpu_pipeline_alone"] = round(
                alone / out["bare_landmark"]["cpu_ms"], 4
            )
    if mp is not None:
        mp.close()
        mp_measured = mp_rows[cfg.warmup :] if len(mp_rows) > cfg.warmup else mp_rows
        mp_wall = [r["wall_ns"] for r in mp_measured]
        out["mediapipe"] = {
            "versions": {"mediapipe": "0.10.14 (legacy solutions.pose via bench/mediapipe_ref.py)"},
            "pipeline": summarise_ns(mp_wall),
            "pipeline_fps": round(len(mp_wall) * 1e9 / float(sum(mp_wall)), 3),
            "cpu_ms_per_frame": round(float(np.mean([r["cpu_ns"] for r in mp_measured])) / 1e6, 4),
            "peak_rss_mb": round(max(r["peak_rss_kib"] for r in mp_rows) / 1024.0, 2),
            "first_reply_s": round((mp.first_reply_ns or 0) / 1e9, 4),
            "first_landmarks_s": round(mp.first_landmarks_ns / 1e9, 4)
            if mp.first_landmarks_ns
            else None,
            "frames_with_pose": sum(1 for lm in mp_lm if lm is not None),
            "samples_ms": [round(v / 1e6, 4) for v in mp_wall],
            "cpu_samples_ms": [round(r["cpu_ns"] / 1e6, 4) for r in mp_measured],
        }
        out["agreement"] = landmark_agreement(ours_lm, mp_lm, width, height)
        out["ratios"] = ratios(out)
    return out


def landmark_agreement(
    ours: list[NDArray[np.float32] | None],
    reference: list[NDArray[np.float32] | None],
    width: int,
    height: int,
) -> dict[str, Any]:
    """Mean distance over torso size by body part, MediaPipe as the reference."""
    from edge.eval import agreement
    from edge.eval.bodyparts import to_pixels

    f = len(ours)
    cand = np.full((f, 33, 5), np.nan, dtype=np.float64)
    ref = np.full((f, 33, 5), np.nan, dtype=np.float64)
    for k in range(f):
        if ours[k] is not None:
            cand[k] = ours[k]
        if reference[k] is not None:
            ref[k] = reference[k]
    a = agreement(to_pixels(cand, width, height), to_pixels(ref, width, height), ref[..., 3])
    return {
        "mean_torso": round(a.mean, 5),
        "p95_torso": round(a.p95, 5),
        "by_part": {p: round(s.mean, 5) for p, s in a.by_part.items()},
        "frames_compared": a.frames_compared,
        "frames_reference_only": a.frames_reference_only,
        "frames_candidate_only": a.frames_candidate_only,
    }


def ratios(run: dict[str, Any]) -> dict[str, float]:
    """Ours over MediaPipe's (throughput: higher is better; the rest: lower is better)."""
    mp = run["mediapipe"]
    ours_wall = np.asarray(run["samples_ms"]["pipeline"], dtype=np.float64)
    ours_cpu = np.asarray(run["samples_ms"]["cpu_pipeline"], dtype=np.float64)
    mp_wall = np.asarray(mp["samples_ms"], dtype=np.float64)
    mp_cpu = np.asarray(mp["cpu_samples_ms"], dtype=np.float64)
    n = min(ours_wall.size, mp_wall.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        # frame-paired: each frame's two measurements were taken moments apart, so
        # a burst of load from elsewhere hits one pair, not the whole mean
        paired_speed = float(np.nanmedian(mp_wall[:n] / ours_wall[:n])) if n else float("nan")
        paired_cpu = float(np.nanmedian(ours_cpu[:n] / mp_cpu[:n])) if n else float("nan")
    return {
        "throughput_paired_median": round(paired_speed, 4),
        "cpu_per_frame_paired_median": round(paired_cpu, 4),
        "throughput": round(run["pipeline_fps"] / mp["pipeline_fps"], 4),
        "cpu_per_frame": round(run["cpu"]["pipeline_ms_per_frame"] / mp["cpu_ms_per_frame"], 4),
        "latency_p50": round(run["pipeline"]["p50_ms"] / mp["pipeline"]["p50_ms"], 4),
        "latency_p95": round(run["pipeline"]["p95_ms"] / mp["pipeline"]["p95_ms"], 4),
        # headline: same footing as MediaPipe (decoded frames fed, no decoder, no publisher)
        "peak_rss": round(_fed_peak_rss_mb(run) / mp["peak_rss_mb"], 4),
        # the whole run process: capture/decoder, pipeline, publisher (the daemon's shape)
        "peak_rss_daemon": round(run["memory"]["peak_rss_mb"] / mp["peak_rss_mb"], 4),
    }


def _fed_peak_rss_mb(run: dict[str, Any]) -> float:
    """Peak RSS of the pipeline fed decoded frames, or of the run process without one."""
    fed = run["memory"].get("pipeline_process") or {}
    peak = fed.get("peak_rss_mb")
    return float(peak) if peak else float(run["memory"]["peak_rss_mb"])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = RunConfig(**json.loads(Path(args[0]).read_text(encoding="utf-8")))
    record = measure(cfg)
    sys.stdout.write(json.dumps(record, allow_nan=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
