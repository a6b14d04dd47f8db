"""The README's first command, exactly as written, ends with landmarks printed by a
subscriber: set-up, daemon on the sample clip with the embedded broker, listen, clean stop."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.faults import daemon_env, model_precision
from tests.support.mosquitto import free_port

REPO = Path(__file__).resolve().parent.parent


def readme_first_command() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    assert block, "README.md has no code block"
    first = block.group(1).strip().splitlines()[0]
    return first.split("#")[0].strip()


def test_readme_first_command_is_the_demo() -> None:
    assert readme_first_command() == "scripts/demo"
    assert os.access(REPO / "scripts" / "demo", os.X_OK)


@pytest.mark.slow
def test_readme_first_command_prints_landmarks() -> None:
    command = readme_first_command()
    extra = {
        "EDGE_POSE_DEMO_PORT": str(free_port()),
        "EDGE_POSE_DEMO_COUNT": "5",
        "EDGE_POSE_DEMO_TIMEOUT": "120",
    }
    if model_precision() == "float":  # until the int8 models are committed
        extra["EDGE_POSE_MODELS__PRECISION"] = "float"
    proc = subprocess.run(
        command,
        shell=True,
        cwd=REPO,
        env=daemon_env(**extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if "people 1" in ln]
    assert len(lines) >= 5, proc.stdout[-3000:]
    # each line carries landmarks: normalised (x, y) of the nose, wrists and ankles
    coords = re.findall(r"nose \((\d\.\d+), (\d\.\d+)\)", "\n".join(lines))
    assert len(coords) >= 5
    assert all(0.0 < float(x) < 1.0 and 0.0 < float(y) < 1.0 for x, y in coords)
    output = proc.stdout + proc.stderr
    assert "received 5 pose messages" in output
    assert "stopped after" in output
