"""The bench report: one JSON document (machine-readable) and a Markdown rendering."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from bench.measure import STAGES

SCHEMA = "edge-pose-bench/1"

#: Targets of the MediaPipe comparison (ours / MediaPipe's), with the better direction.
TARGETS: dict[str, tuple[float, str]] = {
    "throughput": (2.0, ">="),
    "cpu_per_frame": (0.8, "<="),
    "peak_rss": (0.5, "<="),
}
OVERHEAD_TARGET = 1.15

#: Keys every report has (tests check them).
REPORT_KEYS = ("schema", "created_utc", "command", "machine", "options", "runs", "summary")
RUN_KEYS = (
    "config",
    "label",
    "frames",
    "stages",
    "end_to_end",
    "capture_to_publish",
    "throughput_fps",
    "pipeline_fps",
    "detector",
    "cpu",
    "memory",
    "startup",
    "machine",
)


def build_report(  # noqa: PLR0917
    runs: list[dict[str, Any]],
    machine: dict[str, Any],
    options: dict[str, Any],
    command: list[str],
    best: dict[str, Any] | None,
    accuracy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "best_label": best["label"] if best else None,
        "throttled_runs": [r["label"] for r in runs if r["machine"].get("throttled")],
    }
    if best is not None:
        summary["best_pipeline_fps"] = best["pipeline_fps"]
        summary["overhead_ratio"] = best.get("overhead_ratio")
        if "ratios" in best:
            summary["ratios_vs_mediapipe"] = best["ratios"]
            summary["targets"] = {
                k: {
                    "target": t,
                    "op": op,
                    "value": best["ratios"][k],
                    "met": _met(best["ratios"][k], t, op),
                }
                for k, (t, op) in TARGETS.items()
            }
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "machine": machine,
        "options": options,
        "runs": runs,
        "summary": summary,
    }
    if accuracy is not None:
        report["accuracy"] = accuracy
    return report


def _met(value: float, target: float, op: str) -> bool:
    return value >= target if op == ">=" else value <= target


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=1, allow_nan=True) + "\n", encoding="utf-8")


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    runs: list[dict[str, Any]] = report["runs"]
    out = [
        "# edge-pose bench",
        "",
        f"- machine: **{m.get('board') or 'no device-tree board (not a Pi)'}**, "
        f"{m.get('cpu_model')}, {m.get('cores')} cores, governor {m.get('governor') or '–'}, "
        f"load {m.get('load_avg_1m')}",
        f"- input: `{report['options'].get('input')}`, frames {report['options'].get('frames')}, "
        f"broker {report['options'].get('broker') or 'none (encode only)'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v),
        f"- created {report['created_utc']}",
        "",
        "## Runs",
        "",
    ]
    rows = []
    for r in runs:
        ov = r.get("overhead_ratio") or {}
        rows.append(
            [
                r["label"] + (" ⚠ throttled" if r["machine"].get("throttled") else ""),
                _f(r["pipeline_fps"], 1),
                _f(r["throughput_fps"], 1),
                _f(r["end_to_end"].get("p50_ms")),
                _f(r["end_to_end"].get("p95_ms")),
                _f(r["end_to_end"].get("p99_ms")),
                _f(r["cpu"]["pipeline_ms_per_frame"]),
                _f(r["memory"]["peak_rss_mb"], 0),
                _f(r["detector"]["per_100_frames"], 1),
                _f(ov.get("cpu")),
                _f(r["startup"].get("first_landmarks_s")),
            ]
        )
    out += _table(
        [
            "run",
            "pipeline fps",
            "e2e fps",
            "e2e p50 ms",
            "p95",
            "p99",
            "CPU ms/frame",
            "peak RSS MB",
            "detector /100",
            "overhead",
            "first landmarks s",
        ],
        rows,
    )
    skipped = report["summary"].get("skipped") or []
    if skipped:
        out += ["", "Not run: " + "; ".join(f"{s['label']} ({s['reason']})" for s in skipped)]
    best = next((r for r in runs if r["label"] == report["summary"].get("best_label")), None)
    if best is not None:
        out += ["", f"## Where the time goes ({best['label']})", ""]
        srows = []
        for s in STAGES:
            st = best["stages"][s]
            srows.append(
                [
                    s,
                    str(st.get("count", 0)),
                    _f(st.get("p50_ms")),
                    _f(st.get("p95_ms")),
                    _f(st.get("p99_ms")),
                    _f(st.get("per_frame_mean_ms")),
                    _f(100 * st.get("share_of_e2e", 0.0), 1),
                ]
            )
        srows.append(
            [
                "end to end",
                str(best["end_to_end"]["count"]),
                _f(best["end_to_end"]["p50_ms"]),
                _f(best["end_to_end"]["p95_ms"]),
                _f(best["end_to_end"]["p99_ms"]),
                _f(best["end_to_end"]["mean_ms"]),
                "100.0",
            ]
        )
        out += _table(
            ["stage", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms/frame", "% of e2e"], srows
        )
        if "bare_landmark" in best:
            ov = best["overhead_ratio"]
            out += [
                "",
                f"Pipeline CPU per frame {_f(best['cpu']['pipeline_ms_per_frame'])} ms vs bare "
                f"landmark-model invoke {_f(best['bare_landmark']['cpu_ms'])} ms CPU "
                f"(same run): overhead ratio **{_f(ov['cpu'])}** (wall {_f(ov['wall'])}; "
                f"target <= {OVERHEAD_TARGET}).",
            ]
            fed = best["memory"].get("pipeline_process") or {}
            if "cpu_pipeline_alone" in ov:
                out[-1] += (
                    f" The pipeline alone in its own process, fed the same decoded frames (the "
                    f"bare model's footing): {_f(fed.get('cpu_ms_per_frame'))} ms CPU per frame, "
                    f"overhead ratio **{_f(ov['cpu_pipeline_alone'])}**; the difference is the "
                    "decoder, publisher and bench sharing the run process."
                )
    if best is not None and "mediapipe" in best:
        mp = best["mediapipe"]
        ratios = best["ratios"]
        fed_peak = (best["memory"].get("pipeline_process") or {}).get("peak_rss_mb") or best[
            "memory"
        ]["peak_rss_mb"]
        targets = report["summary"].get("targets", {})

        def verdict(key: str) -> str:
            t = targets.get(key)
            if not t:
                return ""
            return f"{t['op']} {t['target']} " + ("✅" if t["met"] else "❌")

        out += [
            "",
            f"## Side by side with MediaPipe ({best['label']} vs legacy solutions.pose)",
            "",
        ]
        out += _table(
            ["metric", "edge-pose", "MediaPipe", "ratio", "target"],
            [
                [
                    "throughput (fps, pose stage)",
                    _f(best["pipeline_fps"], 1),
                    _f(mp["pipeline_fps"], 1),
                    _f(ratios["throughput"]),
                    verdict("throughput"),
                ],
                [
                    "CPU ms per frame",
                    _f(best["cpu"]["pipeline_ms_per_frame"]),
                    _f(mp["cpu_ms_per_frame"]),
                    _f(ratios["cpu_per_frame"]),
                    verdict("cpu_per_frame"),
                ],
                [
                    "throughput, frame-paired median",
                    "",
                    "",
                    _f(ratios.get("throughput_paired_median")),
                    "",
                ],
                [
                    "CPU per frame, frame-paired median",
                    "",
                    "",
                    _f(ratios.get("cpu_per_frame_paired_median")),
                    "",
                ],
                [
                    "latency p50 ms",
                    _f(best["pipeline"]["p50_ms"]),
                    _f(mp["pipeline"]["p50_ms"]),
                    _f(ratios["latency_p50"]),
                    "",
                ],
                [
                    "latency p95 ms",
                    _f(best["pipeline"]["p95_ms"]),
                    _f(mp["pipeline"]["p95_ms"]),
                    _f(ratios["latency_p95"]),
                    "",
                ],
                [
                    "peak RSS MB, pipeline fed decoded frames (same footing)",
                    _f(fed_peak, 0),
                    _f(mp["peak_rss_mb"], 0),
                    _f(ratios["peak_rss"]),
                    verdict("peak_rss"),
                ],
                [
                    "peak RSS MB, whole run process (decoder + publisher, daemon-like)",
                    _f(best["memory"]["peak_rss_mb"], 0),
                    _f(mp["peak_rss_mb"], 0),
                    _f(ratios.get("peak_rss_daemon")),
                    "",
                ],
                [
                    "start-up to first landmarks s",
                    _f(best["startup"].get("first_landmarks_s")),
                    _f(mp.get("first_landmarks_s")),
                    "",
                    "",
                ],
                [
                    "frames with a pose",
                    str(best["frames_with_pose"]),
                    str(mp["frames_with_pose"]),
                    "",
                    "",
                ],
            ],
        )
        missed = [k for k, t in targets.items() if not t["met"]]
        if missed:
            stages = sorted(
                ((s, best["stages"][s]["per_frame_mean_ms"]) for s in STAGES),
                key=lambda kv: -kv[1],
            )
            mem = best["memory"]
            fed_mem = mem.get("pipeline_process") or {}
            out += [
                "",
                "Short of target: "
                + ", ".join(missed)
                + ". Time per frame by stage: "
                + ", ".join(f"{s} {v:.2f} ms" for s, v in stages if v > 0)
                + f". Memory: {mem.get('rss_at_start_mb', 0):.0f} MB at start (Python, numpy), "
                f"{mem['rss_after_build_mb']:.0f} MB after imports and model load, "
                f"{mem['peak_rss_mb']:.0f} MB peak (run process); pipeline fed decoded frames: "
                f"{fed_mem.get('rss_at_start_mb') or 0:.0f} MB at start, "
                f"{fed_mem.get('rss_after_build_mb') or 0:.0f} MB after imports and model load, "
                f"{fed_mem.get('peak_rss_mb') or 0:.0f} MB peak.",
            ]
        ag = best.get("agreement")
        if ag:
            out += [
                "",
                "Landmark agreement with MediaPipe (mean distance / torso size, "
                f"{ag['frames_compared']} frames):",
                "",
            ]
            out += _table(
                ["overall", *ag["by_part"].keys()],
                [[_f(ag["mean_torso"], 4), *(_f(v, 4) for v in ag["by_part"].values())]],
            )
    acc = report.get("accuracy")
    if acc:
        out += [
            "",
            f"## Accuracy on `{acc.get('dir')}` ({acc.get('persons')} annotated persons)",
            "",
        ]
        arows = []
        for prec, a in acc["by_precision"].items():
            if "error" in a:
                arows.append([prec, "–", "–", f"not scored: {a['error']}"])
                continue
            arows.append([prec, _f(a["pck"], 1), _f(a["mean_error_torso"], 3), str(a["keypoints"])])
        out += _table(["precision", "PCK@0.2 %", "mean error / torso", "keypoints"], arows)
        if "int8_minus_float_pck" in acc:
            out += ["", f"int8 - float: {acc['int8_minus_float_pck']:+.1f} PCK points."]
    ag_against = report.get("against")
    if ag_against:
        out += ["", f"## Against `{ag_against['reference']}`", ""]
        out += _table(
            ["run", "metric", "reference", "now", "change", "status"],
            [
                [
                    f["run"],
                    f["metric"],
                    _f(f["reference"], 3),
                    _f(f["current"], 3),
                    f"{100 * f['change']:+.1f}%",
                    f["status"],
                ]
                for f in ag_against["findings"]
            ],
        )
        out += [
            "",
            f"**{ag_against['regressions']} regression(s)** beyond "
            f"±{100 * ag_against['tolerance']:.0f}%.",
        ]
    out += [
        "",
        "Notes: per-stage times come from the pipeline's own `stage_ns` (perf_counter_ns); "
        "CPU is this process's CPU time (all threads) around the pose stage, MediaPipe's is "
        "measured the same way in its own process. Ratios are what to quote; absolute numbers "
        "only with the machine above.",
        "",
    ]
    return "\n".join(out)
