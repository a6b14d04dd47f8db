"""Run a list of configurations, each in a fresh child process (``bench.measure``).

A child per configuration keeps peak RSS and start-up time honest (nothing left
over from the previous configuration or from the report's matplotlib).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from itertools import product
from pathlib import Path
from typing import Any

from bench.measure import RunConfig

REPO = Path(__file__).resolve().parent.parent


class BenchRunError(RuntimeError):
    """A configuration's child process failed; the message holds its last stderr lines."""


def run_config(cfg: RunConfig, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Measure one configuration in a child process and return its record."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        cfg = replace(cfg, spawn_ns=time.perf_counter_ns())
        json.dump(asdict(cfg), f)
        path = f.name
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.measure", path],
            stdout=subprocess.PIPE,
            stderr=None if cfg.progress else subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=timeout_s,
            check=False,
        )
    finally:
        Path(path).unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        raise BenchRunError(f"{cfg.label} failed (exit {proc.returncode}):\n{tail}")
    last = proc.stdout.strip().splitlines()[-1]
    record: dict[str, Any] = json.loads(last)
    return record


def matrix_configs(
    base: RunConfig,
    models: list[str],
    precisions: list[str],
    threads: list[int],
    delegates: list[str],
) -> list[RunConfig]:
    """Every combination, MediaPipe compared once per model (at the first thread count)."""
    out: list[RunConfig] = []
    for model, precision, delegate, t in product(models, precisions, delegates, threads):
        out.append(replace(base, model=model, precision=precision, delegate=delegate, threads=t))
    return out


def best_run(
    runs: list[dict[str, Any]], model: str = "lite", precision: str = "int8"
) -> dict[str, Any] | None:
    """The highest-throughput run of ``model``/``precision`` (the "best thread count")."""
    cands = [
        r for r in runs if r["config"]["model"] == model and r["config"]["precision"] == precision
    ]
    return max(cands, key=lambda r: float(r["pipeline_fps"]), default=None)
