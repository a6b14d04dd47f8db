"""PNG plots of a bench report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.measure import STAGES


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_by_stage(run: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    samples = run["samples_ms"]
    names = [s for s in STAGES if any(v > 0 for v in samples[s])] + ["end_to_end"]
    data = [[v for v in samples[s] if v > 0] or [0.0] for s in names]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    ax.boxplot(data, vert=False, showfliers=True, whis=(1, 99))
    labels = [f"{n.replace('_', ' ')} (n={len([v for v in samples[n] if v > 0])})" for n in names]
    ax.set_yticks(range(1, len(names) + 1), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per frame (log scale; whiskers p1-p99)")
    ax.set_title(f"Latency by stage: {run['label']} ({run['frames_measured']} frames)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _save(plt, fig, path)


def fps_over_time(runs: list[dict[str, Any]], path: Path) -> Path:
    """Pose-stage fps per run and of the MediaPipe process interleaved with it."""
    from bench.stats import rolling_fps

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for k, r in enumerate(runs):
        color = f"C{k % 10}"
        pipeline_ms = r["samples_ms"].get("pipeline")
        if pipeline_ms:
            ax.plot(rolling_fps([int(v * 1e6) for v in pipeline_ms]), color=color,
                    label=f"{r['label']}", linewidth=1.3)  # fmt: skip
        else:
            ax.plot(r["fps_timeline"], color=color, label=f"{r['label']} (end to end)")
        if "mediapipe" in r:
            ax.plot(
                rolling_fps([int(v * 1e6) for v in r["mediapipe"]["samples_ms"]]),
                color=color,
                linestyle="--",
                linewidth=1.0,
                label=f"MediaPipe, interleaved with {r['label']}",
            )
    ax.set_xlabel("frame")
    ax.set_ylabel("frames per second (sliding 25-frame window)")
    ax.set_title("Throughput over time: pose stage, same frames")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def throughput_vs_threads(runs: list[dict[str, Any]], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in runs:
        c = r["config"]
        key = f"{c['model']} {c['precision']} {c['delegate']}"
        series.setdefault(key, []).append((int(c["threads"]), float(r["pipeline_fps"])))
    for key, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key)
    mp = [(r["config"]["model"], r["mediapipe"]["pipeline_fps"]) for r in runs if "mediapipe" in r]
    for model in sorted({m for m, _ in mp}):
        vals = [v for m, v in mp if m == model]
        ax.axhline(sum(vals) / len(vals), linestyle="--", color="gray")
        ax.annotate(
            f"MediaPipe {model}", (ax.get_xlim()[0], sum(vals) / len(vals)), fontsize=8, va="bottom"
        )
    threads = sorted({int(r["config"]["threads"]) for r in runs})
    ax.set_xticks(threads)
    ax.set_xlabel("threads")
    ax.set_ylabel("frames per second (pose stage)")
    ax.set_title("Throughput vs threads")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def accuracy_by_part(report: dict[str, Any], path: Path) -> Path | None:
    """PCK by body part, int8 vs float (``--accuracy``), else agreement with MediaPipe."""
    plt = _plt()
    acc = report.get("accuracy")
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    scored = {k: v for k, v in (acc or {}).get("by_precision", {}).items() if "pck_by_part" in v}
    if acc and scored:
        precs = list(scored)
        parts = list(next(iter(scored.values()))["pck_by_part"])
        width = 0.8 / max(1, len(precs))
        for k, prec in enumerate(precs):
            vals = [scored[prec]["pck_by_part"][p] for p in parts]
            ax.bar([i + k * width for i in range(len(parts))], vals, width, label=prec)
        ax.set_xticks([i + width * (len(precs) - 1) / 2 for i in range(len(parts))], parts)
        ax.set_ylabel("PCK@0.2 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"Accuracy by body part ({acc.get('persons')} annotated persons)")
    else:
        runs = [r for r in report["runs"] if r.get("agreement")]
        if not runs:
            plt.close(fig)
            return None
        parts = list(runs[0]["agreement"]["by_part"])
        width = 0.8 / len(runs)
        for k, r in enumerate(runs):
            vals = [r["agreement"]["by_part"][p] for p in parts]
            ax.bar([i + k * width for i in range(len(parts))], vals, width, label=r["label"])
        ax.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(parts))], parts)
        ax.set_ylabel("mean distance to MediaPipe / torso size")
        ax.set_title("Agreement with MediaPipe by body part (lower is closer)")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def write_all(report: dict[str, Any], out_dir: Path) -> list[Path]:
    runs: list[dict[str, Any]] = report["runs"]
    best = next((r for r in runs if r["label"] == report["summary"].get("best_label")), runs[0])
    paths = [
        latency_by_stage(best, out_dir / "latency_by_stage.png"),
        fps_over_time(runs, out_dir / "fps_over_time.png"),
        throughput_vs_threads(runs, out_dir / "throughput_vs_threads.png"),
    ]
    acc = accuracy_by_part(report, out_dir / "accuracy_by_part.png")
    if acc is not None:
        paths.append(acc)
    return paths
