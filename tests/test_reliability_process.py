"""Process-level faults of the real daemon, each injected for real:

* a model file truncated, overwritten or missing before start: exit 65 (EX_DATAERR)
  and one log line naming the file, the expected sha256 and the fix;
* with the checksum turned off, a truncated model still exits 65 (the loader's error);
* a model truncated in place and another replaced after start: the running process
  keeps going (the models are in memory), the next start exits 65;
* SIGTERM while the first model loads: exit 0, one log line;
* the disk holding the state file is full: one warning, the daemon keeps running,
  and the file is written again once there is room;
* `edge-pose process` writing its report to a full disk: exit 1 with one line
  naming the file, no traceback;
* the camera (an MJPEG stream over HTTP) stops and returns: a fault line, the
  daemon keeps running and resumes by itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.models import int8_file_name
from tests.support.faults import (
    EDGE_POSE,
    DaemonProcess,
    daemon_env,
    full_disk,
    model_precision,
    private_models_dir,
    read_state,
    small_clip,
    wait_state,
    write_config,
)
from tests.support.mjpeg_server import MjpegServer, jpeg_frames_from_clip
from tests.support.mosquitto import free_port

EX_DATAERR = 65


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    out = tmp_path_factory.mktemp("clip") / "dance-small.mp4"
    return small_clip(shared_data / "video" / "dance.mp4", out, width=192, frames=60)


def _config(
    tmp_path: Path, clip: Path | str, models_dir: Path | None, **sections: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Real clip, real models (int8 names, ours to corrupt), a broker URL nobody serves."""
    cfg: dict[str, dict[str, Any]] = {
        "source": {"uri": str(clip), "loop": True, "realtime": True},
        "models": {"precision": "int8" if models_dir else model_precision(), "threads": 1},
        "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}", "node_id": "proc", "discovery": False},
        "stats": {"interval_s": 1.0, "state_file": str(tmp_path / "stats.json")},
    }
    if models_dir is not None:
        cfg["models"]["dir"] = str(models_dir)
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def _run_to_exit(config: Path, log: Path, timeout_s: float = 120) -> tuple[int, str]:
    daemon = DaemonProcess.start(config, log)
    try:
        rc = daemon.wait_exit(timeout_s)
    except subprocess.TimeoutExpired:
        daemon.stop(signal.SIGKILL)
        raise
    return rc, daemon.log_text()


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:  # in place: the same inode, now half as long
        f.truncate(path.stat().st_size // 2)


def _replace(path: Path) -> None:
    tmp = path.with_name(path.name + ".new")  # a new file renamed over it
    tmp.write_bytes(b"TFL3" + os.urandom(4096))
    os.replace(tmp, path)


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "verify", "line"),
    [
        ("truncated", True, r"cannot start: model (\S+) is corrupt: expected sha256 [0-9a-f]{64}"),
        ("replaced", True, r"cannot start: model (\S+) is corrupt: expected sha256 [0-9a-f]{64}"),
        ("missing", True, r"cannot start: model (\S+) is missing \(expected sha256 [0-9a-f]{64}"),
        ("truncated", False, r"cannot start: cannot load (\S+): "),
    ],
    ids=["truncated", "replaced", "missing", "truncated-unverified"],
)
def test_corrupt_model_at_start_exits_65_naming_the_file(
    tmp_path: Path, clip: Path, fault: str, verify: bool, line: str
) -> None:
    models = private_models_dir(tmp_path / "models")
    target = models / int8_file_name("lite")
    {"truncated": _truncate, "replaced": _replace, "missing": os.remove}[fault](target)
    config = write_config(
        tmp_path / "config.toml",
        _config(tmp_path, clip, models, models={"verify": verify}),
    )
    rc, log = _run_to_exit(config, tmp_path / "daemon.log")
    assert rc == EX_DATAERR, log[-3000:]
    match = re.search(line, log)
    assert match, log[-3000:]
    assert match.group(1).rstrip(":") == str(target)
    if verify:
        assert "fix: " in log  # ... and says how to restore it
    assert "Traceback" not in log
    assert "first frame processed" not in log


@pytest.mark.slow
def test_models_corrupted_after_start_keep_running_then_next_start_fails(
    tmp_path: Path, clip: Path
) -> None:
    models = private_models_dir(tmp_path / "models")
    config = write_config(tmp_path / "config.toml", _config(tmp_path, clip, models))
    state = tmp_path / "stats.json"
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        daemon.wait_log(r"first frame processed", 120)
        before = wait_state(state, lambda s: s.get("frames_processed", 0) > 0, 30)
        _truncate(models / int8_file_name("lite"))  # same inode, pages beyond EOF
        _replace(models / int8_file_name("detector"))  # new inode
        after = wait_state(
            state,
            lambda s: s["frames_processed"] >= before["frames_processed"] + 30,
            90,
        )
        assert after["frame_errors"] == 0
        assert daemon.alive()
    finally:
        rc = daemon.stop()
    assert rc == 0, daemon.log_text()[-3000:]
    # The next start checks the sums and refuses, naming both files.
    rc, log = _run_to_exit(config, tmp_path / "restart.log")
    assert rc == EX_DATAERR, log[-3000:]
    for role in ("detector", "lite"):
        assert f"model {models / int8_file_name(role)} is corrupt" in log  # type: ignore[arg-type]


# --- signals during start-up ---------------------------------------------------------------------


def test_sigterm_during_first_model_load_exits_0(tmp_path: Path, clip: Path) -> None:
    models = private_models_dir(tmp_path / "models")
    detector = str(models / int8_file_name("detector"))
    config = write_config(tmp_path / "config.toml", _config(tmp_path, clip, models))
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    maps = Path(f"/proc/{daemon.pid}/maps")
    deadline = time.monotonic() + 120
    mapped = False
    while time.monotonic() < deadline and daemon.alive():
        try:
            mapped = detector in maps.read_text()
        except (OSError, UnicodeDecodeError):
            mapped = False
        if mapped:  # the interpreter has the detector open: the first load is under way
            daemon.proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.002)
    assert mapped, daemon.log_text()[-3000:]
    rc = daemon.wait_exit(60)
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert re.search(r"SIGTERM: stopping", log)
    assert re.search(r"stopped by a signal during start-up", log), log[-3000:]
    assert "first frame processed" not in log
    assert "Traceback" not in log


# --- a full disk ---------------------------------------------------------------------------


@pytest.mark.slow
def test_full_disk_for_the_state_file_is_one_warning_and_recovers(
    tmp_path: Path, clip: Path
) -> None:
    folder = tmp_path / "state"
    state = folder / "stats.json"
    cfg = _config(tmp_path, clip, None, stats={"state_file": str(state)})
    config = write_config(tmp_path / "config.toml", cfg)
    with full_disk(folder, names=("stats.json",)) as how:
        daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
        try:
            daemon.wait_log(
                rf"cannot write the state file {re.escape(str(state))}: "
                r"\[Errno 28\] No space left on device; retrying every 1 s",
                120,
            )
            first = int(daemon.wait_log(r"stats: .* frames (\d+)", 30).group(1))
            if how == "tmpfs":
                # Three more stats intervals on a full disk: the loop keeps processing
                # frames and the warning is not repeated. Then room again.
                last = int(daemon.wait_log(r"stats: .* frames (\d+)", 60, count=4).group(1))
                assert last > first
                assert daemon.log_text().count("cannot write the state file") == 1
                (folder / "filler").unlink()
            # (/dev/full: the daemon removed its broken temp file; the next write works.)
            assert daemon.alive()
            daemon.wait_log(rf"state file {re.escape(str(state))} written again", 30)
            assert read_state(state)["frames_processed"] >= first
        finally:
            rc = daemon.stop()
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log
    assert log.count("cannot write the state file") == 1
    print(f"disk full via {how}")


def test_process_report_to_a_full_disk_exits_1_naming_the_file(
    tmp_path: Path, shared_data: Path
) -> None:
    folder = tmp_path / "reports"
    with full_disk(folder, names=("results.jsonl",)):
        out = folder / "results.jsonl"
        proc = subprocess.run(
            [
                *EDGE_POSE,
                *("process", str(shared_data / "images" / "seated.jpg")),
                *("--output", str(out), "--precision", model_precision()),
            ],
            env=daemon_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert str(out) in proc.stderr
    assert "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- the camera goes away and comes back ----------------------------------------------------


@pytest.fixture
def camera(shared_data: Path) -> Iterator[MjpegServer]:
    server = MjpegServer(jpeg_frames_from_clip(shared_data / "video" / "dance.mp4", 30), fps=15)
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_camera_stream_stops_and_returns_without_a_restart(
    tmp_path: Path, camera: MjpegServer
) -> None:
    cfg = _config(
        tmp_path,
        camera.url,
        None,
        source={
            "uri": camera.url,
            "stall_timeout_s": 1.0,
            "backoff_initial_s": 0.2,
            "backoff_max_s": 1.0,
        },
    )
    cfg["source"].pop("loop")
    cfg["source"].pop("realtime")
    config = write_config(tmp_path / "config.toml", cfg)
    state = tmp_path / "stats.json"
    daemon = DaemonProcess.start(config, tmp_path / "daemon.log")
    try:
        daemon.wait_log(r"first frame processed", 120)
        camera.stop()  # the camera loses power
        daemon.wait_log(r"capture fault #1: .*; reconnecting with backoff", 30)
        time.sleep(2.0)  # several failed reopen attempts
        during = wait_state(state, lambda s: s.get("source_faults", 0) >= 1, 30)
        camera.start()  # ... and comes back on the same port
        daemon.wait_log(r"source reopened after \d+ attempt\(s\)", 60)
        after = wait_state(
            state, lambda s: s["frames_processed"] >= during["frames_processed"] + 10, 60
        )
        assert after["frame_errors"] == 0
        assert daemon.alive()
    finally:
        rc = daemon.stop()
    log = daemon.log_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log
