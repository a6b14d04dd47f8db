"""edge.stats (histograms, rates, counters) and the daemon's summary line and state file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.daemon import state_file_path, summary_line, write_state_file
from edge.stats import Counter, LatencyHistogram, RateMeter


def test_histogram_percentiles_within_a_bucket() -> None:
    rng = np.random.default_rng(7)
    samples_ns = rng.lognormal(mean=np.log(20e6), sigma=0.4, size=5000).astype(np.int64)
    h = LatencyHistogram()
    for s in samples_ns:
        h.record(int(s))
    for q in (50, 90, 99):
        truth = float(np.percentile(samples_ns, q))
        assert abs(h.percentile_ns(q) - truth) / truth < 0.06, q
    summary = h.summary()
    assert summary.count == 5000
    assert summary.max_ms == pytest.approx(samples_ns.max() / 1e6)
    assert summary.mean_ms == pytest.approx(samples_ns.mean() / 1e6)
    h.reset()
    assert h.count == 0
    assert h.percentile_ns(50) == 0.0


def test_histogram_edges_and_bad_input() -> None:
    h = LatencyHistogram()
    h.record(0)
    h.record(10**15)  # beyond the last bucket: clamped, max kept exactly
    assert h.summary().max_ms == 1e9
    with pytest.raises(ValueError, match="negative"):
        h.record(-1)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        h.percentile_ns(101)


def test_rate_meter_counts_a_steady_stream_and_decays_when_it_stops() -> None:
    r = RateMeter(window_s=2.0)
    t = 0
    for _ in range(50):
        t += 100_000_000  # 10 per second
        r.tick(t)
    assert r.rate_per_s(t) == pytest.approx(10.0, rel=0.01)
    assert r.rate_per_s(t + 5_000_000_000) == 0.0
    with pytest.raises(ValueError):
        RateMeter(window_s=0)


def test_counter_is_thread_safe() -> None:
    c = Counter()

    def add() -> None:
        for _ in range(10_000):
            c.add()

    threads = [threading.Thread(target=add) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert c.value == 40_000


def test_summary_line_and_state_file(tmp_path: Path) -> None:
    record = {
        "fps": 4.96,
        "people": 2,
        "latency_ms": {"p50_ms": 21.04, "p99_ms": 48.0},
        "frames_processed": 1200,
        "frames_dropped": 3,
        "frame_errors": 1,
        "source_faults": 0,
        "pose_sent": 1199,
        "pose_dropped": 0,
    }
    line = summary_line(record)
    assert line.startswith("5.0 fps, people 2, latency p50 21.0 ms p99 48.0 ms")
    assert "frames 1200 (dropped 3, errors 1)" in line
    path = tmp_path / "stats.json"
    write_state_file(path, record)
    assert json.loads(path.read_text()) == record
    assert not list(tmp_path.glob(".*.tmp"))


def test_state_file_location() -> None:
    cfg = load_config(None, env={}).config
    assert state_file_path(cfg, {}) is None
    assert state_file_path(cfg, {"STATE_DIRECTORY": "/var/lib/edge-pose:/x"}) == Path(
        "/var/lib/edge-pose/stats.json"
    )
    cfg2 = load_config(None, env={"EDGE_POSE_STATS__STATE_FILE": "/tmp/s.json"}).config
    assert state_file_path(cfg2, {"STATE_DIRECTORY": "/var/lib/x"}) == Path("/tmp/s.json")


def test_status_command_fresh_stale_and_missing(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "edge", "status", "--state-file", str(path)]
    missing = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 3
    assert "no stats" in missing.stderr
    record = {"node_id": "hall", "pid": 42, "fps": 5.0, "people": 1, "mqtt_connected": True}
    write_state_file(path, {**record, "time_unix_s": time.time()})
    fresh = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert fresh.returncode == 0, fresh.stderr
    assert "node hall (pid 42)" in fresh.stdout
    assert "5.0 fps, people 1" in fresh.stdout
    assert "mqtt connected" in fresh.stdout
    write_state_file(path, {**record, "time_unix_s": time.time() - 3600})
    stale = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert stale.returncode == 1
    assert "stopped or stuck" in stale.stderr
