"""`edge-pose sources`: on this camera-less machine, with a stand-in Pi camera, and V4L2 naming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import cli
from edge.capture.discovery import discover, v4l2_devices
from tests.support.fake_picamera2 import FakeCamera, install


def machine_has_cameras() -> bool:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        return any(Path("/dev").glob("video[0-9]*"))
    return True


def test_the_real_command_says_none_were_found_here() -> None:
    if machine_has_cameras():
        pytest.skip("this machine has camera devices")
    run = subprocess.run(
        [sys.executable, "-m", "edge", "sources"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("No cameras found.")
    assert "python3-picamera2" in run.stdout and "Hint:" in run.stdout

    run = subprocess.run(
        [sys.executable, "-m", "edge", "sources", "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["cameras"] == [] and len(doc["notes"]) == 2


def test_a_pi_camera_is_listed_with_its_source_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cam = FakeCamera(frames=[np.zeros((480, 640, 3), np.uint8)])
    cam.cameras.append({"Model": "ov5647", "Location": 2, "Rotation": 0, "Num": 1})
    install(monkeypatch, cam)
    assert cli.main(["sources", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    libcamera = [c for c in doc["cameras"] if c["kind"] == "libcamera"]
    assert [(c["uri"], c["name"]) for c in libcamera] == [
        ("picamera2", "imx708"),
        ("picamera2:1", "ov5647"),
    ]
    assert cli.main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "picamera2:1" in out and "ov5647" in out


def test_v4l2_nodes_are_named_from_sysfs_and_pi_internals_hidden(tmp_path: Path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n, name in [(0, "HD Pro Webcam C920"), (10, "bcm2835-codec-decode"), (2, "USB Cam")]:
        (dev / f"video{n}").write_bytes(b"")  # not a real node: capabilities not readable
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(name + "\n")
    (dev / "video-unrelated").write_bytes(b"")
    cams, notes = v4l2_devices(dev, sysfs)
    assert [(c.uri, c.name) for c in cams] == [
        (str(dev / "video0"), "HD Pro Webcam C920"),
        (str(dev / "video2"), "USB Cam"),
    ]
    assert "1 node(s)" in notes[0]
    everything, _ = v4l2_devices(dev, sysfs, include_all=True)
    assert len(everything) == 3
    assert discover(dev_dir=tmp_path / "empty", sysfs_dir=sysfs).notes[-1].startswith("V4L2: no ")
