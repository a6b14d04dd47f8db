"""``edge-pose bench``: orchestrates runs, MediaPipe comparison, accuracy and reports.

The argument parser lives in ``edge/commands/bench.py`` (so ``--help`` works from an
installed wheel); this module is imported from the source checkout when the command
runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import machine
from bench.against import compare
from bench.broker import open_broker
from bench.measure import RunConfig
from bench.report import build_report, to_markdown, write_json
from bench.runner import BenchRunError, best_run, matrix_configs, run_config
from bench.stats import summarise_ns

logger = logging.getLogger(__name__)

MODELS = ("lite", "full", "heavy")
PRECISIONS = ("int8", "float")


def parse_threads(text: str | None, cores: int) -> list[int]:
    """``"2"`` -> [2]; ``"1,2,4"`` -> [1, 2, 4]; None -> [cores]."""
    if not text:
        return [cores]
    out = sorted({int(t) for t in str(text).split(",") if t.strip()})
    if not out or out[0] < 1:
        raise ValueError(f"--threads: positive integers, got {text!r}")
    return out


def edgetpu_present() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libedgetpu.so.1")
    except OSError:
        return False
    return True


def default_input() -> str:
    from edge import paths

    sample = paths.package_data_dir() / "pose_squats.mp4"
    return str(sample)


def plan(args: argparse.Namespace, cores: int) -> list[RunConfig]:
    """The configurations to run, in order."""
    from edge import paths

    base = RunConfig(
        source=args.input or default_input(),
        frames=args.frames,
        warmup=args.warmup,
        model=args.model,
        precision=args.precision,
        threads=1,
        delegate=args.delegate,
        broker=None,
        compare_mediapipe=args.compare == "mediapipe",
        bare_every=args.bare_every,
        spawn_ns=0,
        progress=not args.no_progress,
        float_dir=str(paths.float_models_dir()),
        mediapipe_python=str(args.mediapipe_python) if args.mediapipe_python else None,
    )
    if args.matrix:
        delegates = ["cpu", "edgetpu"] if edgetpu_present() else ["cpu"]
        threads = parse_threads(args.threads, cores) if args.threads else list(range(1, cores + 1))
        return matrix_configs(base, list(MODELS), list(PRECISIONS), threads, delegates)
    return [replace(base, threads=t) for t in parse_threads(args.threads, cores)]


def missing_model(cfg: RunConfig) -> str | None:
    """Why ``cfg`` cannot run (a model file it needs is absent), or None."""
    from edge.models import model_path
    from edge.runtime.model import edgetpu_variant

    for name in ("detector", cfg.model):
        path = model_path(name, cfg.precision)  # type: ignore[arg-type]
        if cfg.delegate == "edgetpu":
            path = edgetpu_variant(path)
        if not path.is_file():
            return f"{path} not found"
    return None


def _delivery(
    record: dict[str, Any], arrivals: list[tuple[int, int]], warmup: int
) -> dict[str, Any]:
    starts = record.pop("capture_start_ns", [])
    lat = [now - starts[f] for f, now in arrivals if warmup <= f < len(starts)]
    out = summarise_ns(lat)
    out["messages"] = len(arrivals)
    spawn = record.get("spawn_ns")
    if arrivals and spawn:
        record["startup"]["first_delivered_s"] = round(
            (min(t for _, t in arrivals) - spawn) / 1e9, 4
        )
    return out


def run(args: argparse.Namespace) -> int:
    cores = len(os.sched_getaffinity(0))
    try:
        configs = plan(args, cores)
    except ValueError as exc:
        print(f"edge-pose bench: {exc}", file=sys.stderr)
        return 2
    skipped: list[dict[str, str]] = []
    if args.matrix:  # sweep what is installed; say what was left out
        runnable = []
        for cfg in configs:
            reason = missing_model(cfg)
            if reason is None:
                runnable.append(cfg)
            else:
                skipped.append({"label": cfg.label, "reason": reason})
        configs = runnable
    if not configs:
        print(
            "edge-pose bench: no model files for any configuration: "
            + "; ".join(s["reason"] for s in skipped),
            file=sys.stderr,
        )
        return 2
    source = configs[0].source
    from edge.capture import SourceError, source_kind

    try:
        source_kind(source)
    except SourceError as exc:
        print(f"edge-pose bench: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out or f"bench-out/{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine.machine_info()
    runs: list[dict[str, Any]] = []
    with open_broker(args.broker) as broker:
        probe = None
        if broker.url:
            from bench.mqtt_sink import DeliveryProbe

            probe = DeliveryProbe(broker.url)
        for k, planned in enumerate(configs, 1):
            cfg = replace(planned, broker=broker.url)
            if not args.no_progress:
                print(f"[{k}/{len(configs)}] {cfg.label}", file=sys.stderr)
            if probe is not None:
                probe.collect(quiet_s=0.05, max_wait_s=0.1)  # nothing left over
            try:
                record = run_config(cfg)
            except BenchRunError as exc:
                print(f"edge-pose bench: {exc}", file=sys.stderr)
                if not args.matrix:
                    return 1
                continue
            if probe is not None:
                arrivals = probe.collect()
                record["capture_to_publish"] = _delivery(record, arrivals, cfg.warmup)
                record["capture_to_publish"]["measured"] = (
                    "capture start to arrival at a subscriber"
                )
            else:
                record.pop("capture_start_ns", None)
                record["capture_to_publish"]["measured"] = "capture start to publish call return"
            record["broker"] = broker.kind
            runs.append(record)
        if probe is not None:
            probe.stop()
    if not runs:
        print("edge-pose bench: no configuration ran", file=sys.stderr)
        return 1
    best = best_run(runs, args.model, args.precision) or max(runs, key=lambda r: r["pipeline_fps"])
    accuracy = None
    if args.accuracy:
        from bench.accuracy import score_dir

        accuracy = score_dir(
            Path(args.accuracy), args.model, best["config"]["threads"], not args.no_progress
        )
    options = {
        "input": source,
        "frames": args.frames,
        "warmup": args.warmup,
        "model": args.model,
        "precision": args.precision,
        "delegate": args.delegate,
        "threads": args.threads,
        "matrix": bool(args.matrix),
        "compare": args.compare,
        "broker": args.broker,
        "bare_every": args.bare_every,
        "accuracy": str(args.accuracy) if args.accuracy else None,
        "out": str(out_dir),
    }
    report = build_report(
        runs, info, options, ["edge-pose", "bench", *sys.argv[2:]], best, accuracy
    )
    report["summary"]["skipped"] = skipped
    status = 0
    if args.against:
        ref_path = Path(args.against)
        reference = json.loads(ref_path.read_text(encoding="utf-8"))
        report["against"] = compare(report, reference, args.tolerance, str(ref_path))
        if report["against"]["regressions"]:
            status = 1
    write_json(report, out_dir / "report.json")
    (out_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
    pngs: list[Path] = []
    if not args.no_plots:
        from bench.plots import write_all

        pngs = write_all(report, out_dir)
    print(to_markdown(report))
    print(
        f"wrote {out_dir / 'report.json'}, {out_dir / 'report.md'}"
        + "".join(f", {p.name}" for p in pngs),
        file=sys.stderr,
    )
    if status:
        print(
            f"edge-pose bench: {report['against']['regressions']} regression(s) against "
            f"{args.against}",
            file=sys.stderr,
        )
    return status
