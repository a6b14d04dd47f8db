"""``--against bench/results/<board>.json``: flag regressions beyond a tolerance band.

Ratios measured within one run (overhead vs the bare model, ours vs MediaPipe,
detector invocations per 100 frames) are compared on any machine. Absolute
numbers (fps, CPU ms, RSS) are compared only when the reference came from the
same kind of machine (same board string and CPU model); otherwise they are listed
as ``skipped``.
"""

from __future__ import annotations

from typing import Any

#: metric name -> (path into a run record, True when higher is better, absolute?)
METRICS: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "overhead_ratio.cpu": (("overhead_ratio", "cpu"), False, False),
    "ratios.throughput": (("ratios", "throughput"), True, False),
    "ratios.cpu_per_frame": (("ratios", "cpu_per_frame"), False, False),
    "ratios.throughput_paired_median": (("ratios", "throughput_paired_median"), True, False),
    "ratios.peak_rss": (("ratios", "peak_rss"), False, False),
    "detector.per_100_frames": (("detector", "per_100_frames"), False, False),
    "agreement.mean_torso": (("agreement", "mean_torso"), False, False),
    "pipeline_fps": (("pipeline_fps",), True, True),
    "cpu.pipeline_ms_per_frame": (("cpu", "pipeline_ms_per_frame"), False, True),
    "end_to_end.p95_ms": (("end_to_end", "p95_ms"), False, True),
    "memory.peak_rss_mb": (("memory", "peak_rss_mb"), False, True),
}
#: A small detector count is noisy in relative terms: allow this many per 100 frames.
ABSOLUTE_SLACK = {"detector.per_100_frames": 1.0, "agreement.mean_torso": 0.005}


def _get(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    cur: Any = run
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return float(cur) if isinstance(cur, int | float) else None


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("board") == b.get("board") and a.get("cpu_model") == b.get("cpu_model")


def compare(
    current: dict[str, Any],
    reference: dict[str, Any],
    tolerance: float = 0.15,
    reference_name: str = "",
) -> dict[str, Any]:
    """Findings for every run label present in both reports."""
    absolute_ok = same_machine(current["machine"], reference["machine"])
    ref_runs = {r["label"]: r for r in reference["runs"]}
    findings: list[dict[str, Any]] = []
    for run in current["runs"]:
        ref = ref_runs.get(run["label"])
        if ref is None:
            continue
        for name, (path, higher_better, absolute) in METRICS.items():
            now, was = _get(run, path), _get(ref, path)
            if now is None or was is None:
                continue
            # from zero, any change counts as 100 %
            change = (now - was) / abs(was) if was else float(now > 0) - float(now < 0)
            worse = -change if higher_better else change
            slack = ABSOLUTE_SLACK.get(name)
            if absolute and not absolute_ok:
                status = "skipped (other machine)"
            elif slack is not None and abs(now - was) <= slack:
                status = "ok"
            elif worse > tolerance:
                status = "regression"
            elif worse < -tolerance:
                status = "improved"
            else:
                status = "ok"
            findings.append(
                {
                    "run": run["label"],
                    "metric": name,
                    "reference": was,
                    "current": now,
                    "change": round(change, 4),
                    "status": status,
                }
            )
    return {
        "reference": reference_name,
        "tolerance": tolerance,
        "same_machine": absolute_ok,
        "runs_compared": sorted({f["run"] for f in findings}),
        "findings": findings,
        "regressions": sum(1 for f in findings if f["status"] == "regression"),
    }
