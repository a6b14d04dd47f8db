"""Soak: the real daemon process chews through a looped clip as fast as it can, against a
real mosquitto with a real subscriber, and we watch it from /proc.

After warm-up its resident memory grows by less than 5 MB, it opens no more file
descriptors and starts no more threads, and every pose message it enqueued is either
received by the subscriber or counted as dropped (QoS 1: all received, none dropped).

CI size: 3,000 processed frames at QoS 1 and 1,000 at QoS 0. The long run:
``pytest tests/test_soak.py --soak-frames 20000 --timeout 0 -s`` (the figures are printed).
"""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.faults import (
    DaemonProcess,
    model_precision,
    read_state,
    small_clip,
    write_config,
)
from tests.support.mosquitto import Mosquitto, MqttRecorder

CI_FRAMES = {1: 3000, 0: 1000}
RSS_GROWTH_MAX_KB = 5 * 1024


def _steady(sample: Callable[[], int], n: int = 7) -> int:
    """The smallest of a few quick samples: a leak raises the floor, a transient does not."""
    values = []
    for _ in range(n):
        values.append(sample())
        time.sleep(0.03)
    return min(values)


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.parametrize("qos", [1, 0])
def test_soak_memory_fds_threads_and_delivery(
    tmp_path: Path,
    shared_data: Path,
    mosquitto: Mosquitto,
    pytestconfig: pytest.Config,
    qos: int,
) -> None:
    long_frames = int(pytestconfig.getoption("--soak-frames") or 0)
    target = long_frames if long_frames else CI_FRAMES[qos]
    warmup = max(300, target // 10)
    clip = small_clip(shared_data / "video" / "dance.mp4", tmp_path / "clip.mp4", 192, 120, 120.0)
    state_file = tmp_path / "stats.json"
    base, node = "soak", f"q{qos}"
    config = write_config(
        tmp_path / "config.toml",
        {
            # Paced at 120 fps: faster than inference here, without a core spent on decoding.
            "source": {"uri": str(clip), "loop": True, "realtime": True},
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {
                "url": mosquitto.url,
                "node_id": node,
                "base_topic": base,
                "qos": qos,
                "queue_size": 1000,
                "discovery": False,
            },
            "stats": {"interval_s": 1.0, "state_file": str(state_file)},
        },
    )
    rec = MqttRecorder(mosquitto.port, [f"{base}/{node}/#"])
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    rss_kb: list[tuple[int, int]] = []  # (frames processed, VmRSS kB) after warm-up
    try:
        daemon.wait_log(r"first frame processed", 120)
        deadline = time.monotonic() + 60 + target / 2  # generous: >= 2 frames/s
        frames = 0
        while frames < warmup:
            assert time.monotonic() < deadline and daemon.alive(), daemon.log_text()[-3000:]
            frames = int(read_state(state_file).get("frames_processed", 0))
            time.sleep(0.5)
        start = {
            "frames": frames,
            "rss_kb": _steady(daemon.rss_kb),
            "fds": _steady(daemon.fd_count),
            "threads": _steady(daemon.threads),
        }
        while frames < target:
            assert time.monotonic() < deadline and daemon.alive(), daemon.log_text()[-3000:]
            time.sleep(0.5)
            frames = int(read_state(state_file).get("frames_processed", 0))
            rss_kb.append((frames, daemon.rss_kb()))
        end = {
            "frames": frames,
            "rss_kb": _steady(daemon.rss_kb),
            "fds": _steady(daemon.fd_count),
            "threads": _steady(daemon.threads),
        }
    finally:
        rc = daemon.stop(signal.SIGTERM)
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log
    final = read_state(state_file)  # written at shutdown, after the last frame

    # Delivery: the last stats record is queued after the last pose message, so its
    # publisher counters are final; every enqueued pose is received or counted as dropped.
    stats_topic, pose_topic = f"{base}/{node}/stats", f"{base}/{node}/pose"

    def final_stats(msgs: Any) -> bool:
        recs = [json.loads(m.payload) for m in rec.on(stats_topic)]
        return any(r.get("frames_processed") == final["frames_processed"] for r in recs)

    assert rec.wait_for(final_stats, 30)
    last = [json.loads(m.payload) for m in rec.on(stats_topic)][-1]
    mqtt: dict[str, Any] = last["mqtt"]
    enqueued, dropped = int(mqtt["pose_enqueued"]), int(mqtt["pose_dropped"])
    assert rec.wait_for(lambda m: len(rec.on(pose_topic)) + dropped >= enqueued, 30)
    time.sleep(0.5)  # anything extra (a duplicate) would show up now
    received = len(rec.on(pose_topic))
    rec.close()
    figures = {
        "qos": qos,
        "frames_processed": final["frames_processed"],
        "frames_fed": final["frames_processed"] + final.get("frames_dropped", 0),
        "frame_errors": final["frame_errors"],
        "rss_kb_warm": start["rss_kb"],
        "rss_kb_end": end["rss_kb"],
        "rss_kb_max": max(r for _, r in rss_kb),
        "rss_kb_median_last_quarter": int(
            statistics.median(r for _, r in rss_kb[-max(1, len(rss_kb) // 4) :])
        ),
        "fds": [start["fds"], end["fds"]],
        "threads": [start["threads"], end["threads"]],
        "pose_enqueued": enqueued,
        "pose_sent": int(mqtt["pose_sent"]),
        "pose_received": received,
        "pose_dropped": dropped,
        "source_faults": final.get("source_faults", 0),
    }
    print("soak figures:", json.dumps(figures))
    (tmp_path / "soak.json").write_text(json.dumps(figures, indent=2))

    assert final["frame_errors"] == 0
    assert final["frames_processed"] >= target
    assert end["rss_kb"] - start["rss_kb"] < RSS_GROWTH_MAX_KB, figures
    assert end["fds"] <= start["fds"], figures
    assert end["threads"] <= start["threads"], figures
    assert enqueued >= final["frames_processed"] * 0.9  # the dancer is in (nearly) every frame
    if qos == 1:
        assert dropped == 0, figures
        assert received == enqueued, figures
    else:
        assert received + dropped == enqueued, figures
