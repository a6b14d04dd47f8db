"""The systemd unit: it verifies, it has the notify/watchdog/restart contract, the
hardening still grants the camera and Coral devices, and its exposure score stays OK."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "edge-pose.service"
MAX_EXPOSURE = 4.0


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (scripts/setup --dev)")
    return exe


def _parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (keys may repeat, as systemd allows)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[current][key.strip()].append(value.strip())
    return sections


def _one(service: dict[str, list[str]], key: str) -> str:
    values = service[key]
    assert values, f"{key}= missing"
    return values[-1]


def test_verify_passes_with_the_venv_binary(tmp_path: Path) -> None:
    """`systemd-analyze verify` also checks ExecStart exists: point it at this venv."""
    exe = Path(sys.executable).parent / "edge-pose"
    assert exe.is_file(), f"{exe} missing: pip install -e ."
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/edge-pose/.venv/bin/edge-pose" in text
    copy = tmp_path / "edge-pose.service"
    copy.write_text(text.replace("/opt/edge-pose/.venv/bin/edge-pose", str(exe)), encoding="utf-8")
    proc = subprocess.run(
        [_analyze(), "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    # Unknown keys and bad values are only warnings: there must be none.
    complaints = [ln for ln in proc.stderr.splitlines() if "edge-pose.service" in ln]
    assert complaints == []


def test_verify_catches_a_typo(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key shows up on stderr."""
    exe = Path(sys.executable).parent / "edge-pose"
    text = UNIT.read_text(encoding="utf-8").replace("/opt/edge-pose/.venv/bin/edge-pose", str(exe))
    copy = tmp_path / "edge-pose.service"
    copy.write_text(text.replace("ProtectSystem=", "ProtectSytem="), encoding="utf-8")
    proc = subprocess.run(
        [_analyze(), "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    assert "ProtectSytem" in proc.stderr


def test_notify_watchdog_and_restart_contract() -> None:
    service = _parse(UNIT)["Service"]
    assert _one(service, "Type") == "notify"
    assert _one(service, "NotifyAccess") == "main"
    assert int(_one(service, "WatchdogSec").removesuffix("s")) >= 10
    assert int(_one(service, "TimeoutStartSec").removesuffix("s")) >= 60
    assert _one(service, "Restart") == "on-failure"
    assert "78" in _one(service, "RestartPreventExitStatus").split()
    assert "--config /etc/edge-pose/config.toml" in _one(service, "ExecStart")
    assert "-HUP" in _one(service, "ExecReload")


def test_hardening_and_device_access() -> None:
    service = _parse(UNIT)["Service"]
    assert _one(service, "User") == "edge-pose"
    groups = set(_one(service, "SupplementaryGroups").split())
    assert {"video", "render", "plugdev", "apex"} <= groups
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
    }.items():
        assert _one(service, key) == value, key
    allowed = {v.split()[0]: v.split()[1] for v in service["DeviceAllow"]}
    for device in (
        "char-video4linux",
        "char-media",
        "char-usb_device",
        "/dev/apex_0",
        "/dev/dma_heap/linux,cma",
        "/dev/dma_heap/system",
        "/dev/dma_heap/vidbuf_cached",
    ):
        assert allowed.get(device) == "rw", device
    assert not any("*" in d for d in allowed), "globs are silently ignored in DeviceAllow"
    # Devices stay reachable: nothing that hides /dev or the device groups.
    assert "PrivateDevices" not in service or _one(service, "PrivateDevices") == "no"
    assert "PrivateUsers" not in service
    creds = service["LoadCredential"]
    assert any(c.startswith("mqtt-password:") for c in creds)
    assert "AF_INET" in _one(service, "RestrictAddressFamilies").split()


def test_security_exposure_is_ok() -> None:
    proc = subprocess.run(
        [_analyze(), "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    match = re.search(r"Overall exposure level for edge-pose\.service: (\d+\.\d+) (\w+)", out)
    assert match, out[-2000:]
    score = float(match.group(1))
    print(f"exposure score {score} {match.group(2)}")
    assert score <= MAX_EXPOSURE, out[-3000:]
    assert match.group(2) in ("OK", "SAFE")
