"""Bench helpers without a run: statistics, thread lists, machine info, the CLI's
checkout lookup."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.against import compare
from bench.cli import missing_model, parse_threads, plan
from bench.machine import machine_info, snapshot
from bench.report import REPORT_KEYS, RUN_KEYS
from bench.stats import rolling_fps, sigma_clip, summarise_ns
from edge.commands import bench as bench_command
from tests.conftest import REPO


def test_summary_of_known_durations() -> None:
    ns = [1_000_000 * v for v in range(1, 101)]  # 1..100 ms
    s = summarise_ns(ns)
    assert s["count"] == 100
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p95_ms"] == pytest.approx(95.05)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["max_ms"] == 100.0
    assert summarise_ns([]) == {"count": 0}


def test_sigma_clip_drops_the_outlier_only() -> None:
    values = np.array([10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 9.9, 500.0])
    keep = sigma_clip(values)
    assert keep.tolist() == [True] * 9 + [False]
    s = summarise_ns([int(v * 1e6) for v in values])
    assert s["outliers"] == 1
    assert s["clipped_mean_ms"] == pytest.approx(values[:9].mean(), rel=1e-3)


def test_rolling_fps_of_constant_frames() -> None:
    fps = rolling_fps([40_000_000] * 50, window=10)
    assert len(fps) == 50
    assert all(v == pytest.approx(25.0) for v in fps)
    assert rolling_fps([]) == []


def test_parse_threads() -> None:
    assert parse_threads(None, 4) == [4]
    assert parse_threads("2", 4) == [2]
    assert parse_threads("4,1,2,2", 4) == [1, 2, 4]
    with pytest.raises(ValueError, match="positive"):
        parse_threads("0", 4)


def test_machine_info_records_what_matters() -> None:
    info = machine_info()
    for key in ("board", "cpu_model", "cores", "governor", "versions", "is_raspberry_pi"):
        assert key in info
    assert info["cores"] >= 1
    assert info["versions"]["numpy"] == np.__version__
    snap = snapshot()
    assert set(snap) == {"temperature_c", "cpu_freq_mhz", "throttled", "throttled_now"}


def test_bench_without_a_checkout_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench_command, "_checkout_root", lambda: tmp_path)
    with pytest.raises(ImportError, match="source checkout"):
        bench_command.load_harness()


def test_bench_from_the_checkout_imports_the_harness() -> None:
    harness = bench_command.load_harness()
    assert callable(harness.run)


def _args(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench_command.register(sub)
    args = parser.parse_args(["bench"])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_matrix_plan_sweeps_model_precision_threads() -> None:
    configs = plan(_args(matrix=True), cores=2)
    labels = [c.label for c in configs]
    assert len(labels) == len(set(labels))
    delegates = {c.delegate for c in configs}
    assert delegates <= {"cpu", "edgetpu"} and "cpu" in delegates
    cpu = [c for c in configs if c.delegate == "cpu"]
    assert len(cpu) == 3 * 2 * 2  # lite/full/heavy x int8/float x 1..2 threads
    assert {(c.model, c.precision, c.threads) for c in cpu} == {
        (m, p, t) for m in ("lite", "full", "heavy") for p in ("int8", "float") for t in (1, 2)
    }


def test_plan_defaults_and_thread_list() -> None:
    configs = plan(_args(), cores=2)
    assert [(c.model, c.precision, c.threads, c.delegate) for c in configs] == [
        ("lite", "int8", 2, "cpu")
    ]
    assert configs[0].source.endswith("pose_squats.mp4")
    configs = plan(_args(threads="1,2", compare="mediapipe"), cores=2)
    assert [c.threads for c in configs] == [1, 2]
    assert all(c.compare_mediapipe for c in configs)


def test_matrix_skips_configurations_without_model_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGE_POSE_MODELS_DIR", str(tmp_path))  # no int8 models here
    configs = plan(_args(matrix=True), cores=1)
    reasons = {c.label: missing_model(c) for c in configs}
    assert reasons["lite-int8-cpu-t1"] == f"{tmp_path / 'pose_detection_int8.tflite'} not found"
    assert reasons["lite-float-cpu-t1"] is None  # the float originals are in the cache
    edgetpu = replace(configs[0], delegate="edgetpu", precision="float")
    assert "edgetpu" in (missing_model(edgetpu) or "")


def test_reference_results_are_complete_and_labelled() -> None:
    """Every file in bench/results/ is a full report that --against can use."""
    files = sorted((REPO / "bench" / "results").glob("*.json"))
    assert files, "bench/results/ holds no reference report"
    for path in files:
        report = json.loads(path.read_text(encoding="utf-8"))
        for key in REPORT_KEYS:
            assert key in report, (path.name, key)
        for run in report["runs"]:
            for key in RUN_KEYS:
                assert key in run, (path.name, run.get("label"), key)
        assert compare(report, report)["regressions"] == 0
        is_pi = report["machine"]["is_raspberry_pi"]
        assert is_pi == path.name.startswith("raspberry-pi"), path.name
    dev = json.loads((REPO / "bench" / "results" / "x86-2core-dev.json").read_text("utf-8"))
    assert "NOT a Raspberry Pi" in dev["reference_note"]
    lite = [r for r in dev["runs"] if r["label"].startswith("lite-int8-cpu")]
    assert lite and all("ratios" in r and "overhead_ratio" in r for r in lite)
