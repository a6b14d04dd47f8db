"""`edge-pose bench`: the report's numbers are consistent, complete and rendered.

One short real run (20 frames of dance.mp4, the real pipeline, MediaPipe interleaved,
the embedded broker) is shared by the module; the tests check consistency, never
speed (stage times add up, counters match, keys, Markdown, PNGs, --against).
"""

from __future__ import annotations

import copy
import json
import statistics
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.against import compare
from bench.measure import STAGES, stage_group
from bench.report import REPORT_KEYS, RUN_KEYS
from edge.models import model_path
from tests.conftest import MEDIAPIPE_PYTHON, REPO

FRAMES = 20
WARMUP = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "bench", *args],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def bench_run(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, float_models_dir: Path
) -> tuple[Path, dict[str, Any]]:
    if not MEDIAPIPE_PYTHON.is_file():
        pytest.fail(f"{MEDIAPIPE_PYTHON} missing: run `scripts/setup --dev`")
    out = tmp_path_factory.mktemp("bench")
    proc = _bench(
        str(shared_data / "video" / "dance.mp4"),
        "--frames", str(FRAMES),
        "--warmup", str(WARMUP),
        "--threads", "1",
        "--precision", "float",
        "--compare", "mediapipe",
        "--broker", "embedded",
        "--out", str(out),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return out, report


def _run(report: dict[str, Any]) -> dict[str, Any]:
    runs: list[dict[str, Any]] = report["runs"]
    assert len(runs) == 1
    return runs[0]


def test_report_has_the_documented_keys(bench_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = bench_run
    for key in REPORT_KEYS:
        assert key in report, key
    run = _run(report)
    for key in RUN_KEYS:
        assert key in run, key
    assert report["schema"] == "edge-pose-bench/1"
    assert report["machine"]["cores"] >= 1
    assert report["machine"]["versions"]["ai-edge-litert"]
    assert report["options"]["frames"] == FRAMES
    assert run["config"]["precision"] == "float" and run["config"]["threads"] == 1
    assert set(run["stages"]) == set(STAGES)
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        assert run["end_to_end"][name] > 0
    assert run["end_to_end"]["p50_ms"] <= run["end_to_end"]["p95_ms"] <= run["end_to_end"]["p99_ms"]
    assert run["frames"] == FRAMES and run["frames_measured"] == FRAMES - WARMUP
    assert run["cpu"]["pipeline_ms_per_frame"] > 0
    # the publisher's threads' CPU during the pipeline window is moved to publishing,
    # so the frame's CPU is still the sum of its windows
    assert run["cpu"]["publisher_threads_in_pipeline_ms_per_frame"] >= 0
    assert run["memory"]["peak_rss_mb"] > 30
    assert run["startup"]["first_landmarks_s"] > 0


def test_stage_times_add_up_to_end_to_end(bench_run: tuple[Path, dict[str, Any]]) -> None:
    run = _run(bench_run[1])
    stage_sum = sum(run["stages"][s]["per_frame_mean_ms"] for s in STAGES)
    e2e = run["end_to_end"]["mean_ms"]
    assert abs(stage_sum - e2e) <= 0.10 * e2e, (stage_sum, e2e)
    # frame by frame too (summed over the run)
    samples = run["samples_ms"]
    per_frame = [sum(samples[s][i] for s in STAGES) for i in range(run["frames_measured"])]
    assert abs(sum(per_frame) - sum(samples["end_to_end"])) <= 0.10 * sum(samples["end_to_end"])
    shares = sum(run["stages"][s]["share_of_e2e"] for s in STAGES)
    assert 0.9 <= shares <= 1.0 + 1e-6


def test_detector_counts_match_the_pipeline_counter(bench_run: tuple[Path, dict[str, Any]]) -> None:
    det = _run(bench_run[1])["detector"]
    assert det["runs_flagged"] == det["runs_counter"]
    assert det["runs_flagged"] >= 1  # the first frame has no track
    assert det["per_100_frames"] == pytest.approx(100 * det["runs_flagged"] / FRAMES, abs=1e-3)


def test_published_through_a_real_broker(bench_run: tuple[Path, dict[str, Any]]) -> None:
    run = _run(bench_run[1])
    assert run["publish"]["pose_sent"] == run["frames_with_pose"] == FRAMES
    assert run["publish"]["pose_dropped"] == 0
    delivery = run["capture_to_publish"]
    assert delivery["measured"] == "capture start to arrival at a subscriber"
    assert delivery["messages"] == FRAMES
    assert delivery["count"] == FRAMES - WARMUP
    # delivery comes after the frame's own capture+pipeline+publish window
    assert delivery["p50_ms"] >= run["end_to_end"]["p50_ms"] * 0.99
    assert run["startup"]["first_delivered_s"] >= run["startup"]["first_landmarks_s"]


def test_mediapipe_side_by_side(bench_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = bench_run
    run = _run(report)
    mp = run["mediapipe"]
    assert mp["frames_with_pose"] == FRAMES
    assert mp["cpu_ms_per_frame"] > 0 and mp["peak_rss_mb"] > 50
    ratios = run["ratios"]
    assert ratios["throughput"] == pytest.approx(run["pipeline_fps"] / mp["pipeline_fps"], rel=1e-3)
    # headline memory ratio: our pipeline alone, fed the same decoded frames as MediaPipe
    fed = run["memory"]["pipeline_process"]
    assert fed["frames_with_pose"] == FRAMES
    assert 30 < fed["rss_after_build_mb"] <= fed["peak_rss_mb"]
    assert ratios["peak_rss"] == pytest.approx(fed["peak_rss_mb"] / mp["peak_rss_mb"], rel=1e-3)
    # the run process also holds the decoder and the publisher: reported beside it
    assert ratios["peak_rss_daemon"] == pytest.approx(
        run["memory"]["peak_rss_mb"] / mp["peak_rss_mb"], rel=1e-3
    )
    assert run["memory"]["peak_rss_mb"] > fed["peak_rss_mb"]
    assert run["overhead_ratio"]["cpu_pipeline_alone"] == pytest.approx(
        fed["cpu_ms_per_frame"] / run["bare_landmark"]["cpu_ms"], rel=1e-2
    )
    ours = run["samples_ms"]["pipeline"]
    assert len(ours) == len(mp["samples_ms"]) == FRAMES - WARMUP
    paired = statistics.median(m / o for m, o in zip(mp["samples_ms"], ours, strict=True))
    assert ratios["throughput_paired_median"] == pytest.approx(paired, rel=1e-2)
    ag = run["agreement"]
    assert ag["frames_compared"] == FRAMES
    # float lite is a faithful re-implementation of MediaPipe's lite solution
    assert ag["mean_torso"] < 0.05
    assert set(ag["by_part"]) >= {"face", "shoulders_hips", "wrists_hands"}
    assert set(report["summary"]["targets"]) == {"throughput", "cpu_per_frame", "peak_rss"}
    overhead = run["overhead_ratio"]
    assert overhead["cpu"] == pytest.approx(
        run["cpu"]["pipeline_ms_per_frame"] / run["bare_landmark"]["cpu_ms"], rel=1e-2
    )


def test_markdown_renders_tables(bench_run: tuple[Path, dict[str, Any]]) -> None:
    out, report = bench_run
    md = (out / "report.md").read_text(encoding="utf-8")
    label = _run(report)["label"]
    lines = md.splitlines()
    rows = [ln for ln in lines if ln.startswith(f"| {label} ")]
    assert len(rows) == 1
    header = next(ln for ln in lines if ln.startswith("| run |"))
    assert rows[0].count("|") == header.count("|")
    # every table: a separator right after its header, same column count on each row
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            cols = lines[i - 1].count("|")
            assert line.count("|") == cols
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == cols, lines[j]
                j += 1
    for stage in STAGES:
        assert any(ln.startswith(f"| {stage} |") for ln in lines), stage
    assert "Side by side with MediaPipe" in md


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_plots_are_real_pngs(bench_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = bench_run
    for name in (
        "latency_by_stage.png",
        "fps_over_time.png",
        "throughput_vs_threads.png",
        "accuracy_by_part.png",
    ):
        path = out / name
        assert path.stat().st_size > 10_000, name
        w, h = _png_size(path)
        assert w >= 600 and h >= 400, (name, w, h)


def test_against_passes_an_identical_run_and_flags_a_regression(
    bench_run: tuple[Path, dict[str, Any]],
) -> None:
    _, report = bench_run
    same = compare(report, copy.deepcopy(report), 0.15)
    assert same["regressions"] == 0
    assert same["same_machine"] and same["runs_compared"] == [_run(report)["label"]]
    assert all(f["status"] == "ok" for f in same["findings"])

    reference = copy.deepcopy(report)
    ref_run = _run(reference)
    ref_run["overhead_ratio"]["cpu"] /= 1.5  # we are now 50% worse than the reference
    ref_run["pipeline_fps"] *= 2.0
    result = compare(report, reference, 0.15)
    flagged = {f["metric"] for f in result["findings"] if f["status"] == "regression"}
    assert flagged == {"overhead_ratio.cpu", "pipeline_fps"}

    # on another machine, absolute numbers are not compared, ratios still are
    reference["machine"]["cpu_model"] = "Cortex-A76"
    other = compare(report, reference, 0.15)
    assert {f["metric"] for f in other["findings"] if f["status"] == "regression"} == {
        "overhead_ratio.cpu"
    }


@pytest.fixture(scope="module")
def short_run(
    bench_run: tuple[Path, dict[str, Any]], shared_data: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A short run with --accuracy, against a reference with an injected regression."""
    out, report = bench_run
    reference = copy.deepcopy(report)
    _run(reference)["detector"]["per_100_frames"] = 0.0  # reference: the detector never ran
    reference["machine"]["cpu_model"] = "another CPU"  # absolute numbers are not compared
    ref_path = out / "reference.json"
    ref_path.write_text(json.dumps(reference), encoding="utf-8")
    keypoints = out / "keypoints"  # one annotated set (MPII) keeps the test short
    keypoints.mkdir()
    (keypoints / "mpii").symlink_to(shared_data / "keypoints" / "mpii")
    proc = _bench(
        str(shared_data / "video" / "dance.mp4"),
        "--frames", "6", "--warmup", "1", "--threads", "1", "--precision", "float",
        "--broker", "none", "--bare-every", "0", "--no-progress",
        "--accuracy", str(keypoints),
        "--out", str(out / "short"), "--against", str(ref_path),
    )  # fmt: skip
    written = json.loads((out / "short" / "report.json").read_text(encoding="utf-8"))
    return proc, written


def test_against_cli_exit_status(
    short_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    """The run against an injected-regression reference exits 1 and says why."""
    proc, written = short_run
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "regression" in proc.stderr
    regressions = [f for f in written["against"]["findings"] if f["status"] == "regression"]
    assert [f["metric"] for f in regressions] == ["detector.per_100_frames"]


def test_accuracy_int8_and_float_side_by_side(
    short_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _, written = short_run
    acc = written["accuracy"]
    assert acc["datasets"] == ["mpii"] and acc["persons"] >= 3
    precisions = ["float"]
    if model_path("lite", "int8").is_file():
        precisions.append("int8")
        assert acc["int8_minus_float_pck"] == pytest.approx(
            acc["by_precision"]["int8"]["pck"] - acc["by_precision"]["float"]["pck"], abs=0.02
        )
    for precision in precisions:
        a = acc["by_precision"][precision]
        assert 40.0 < a["pck"] <= 100.0, (precision, a)
        assert 0.0 < a["mean_error_torso"] < 1.0
        assert a["keypoints"] == acc["by_precision"]["float"]["keypoints"]
        assert set(a["pck_by_part"]) >= {"shoulders_hips", "wrists_hands"}
    out = Path(written["options"]["out"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert any(line.startswith("| float | ") for line in md.splitlines())
    assert (out / "accuracy_by_part.png").read_bytes()[:8] == PNG_SIGNATURE


def test_stage_names_map_onto_report_stages() -> None:
    assert stage_group("detector") == "detector"
    assert stage_group("landmarks") == "landmark"
    assert stage_group("preprocess") == "preprocess"
    assert stage_group("postprocess") == "postprocess"
    assert stage_group("filters") == "postprocess"
