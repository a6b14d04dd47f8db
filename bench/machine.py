"""What machine a run came from: board, CPU, governor, frequency, temperature, throttling.

Absolute numbers mean nothing without this; a throttled run is flagged.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
#: vcgencmd get_throttled bits that mean "throttled or capped now".
THROTTLED_NOW_MASK = 0x7  # under-voltage, frequency capped, throttled
THROTTLED_EVER_MASK = 0x70000


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def board_model() -> str | None:
    """``/proc/device-tree/model`` (Raspberry Pi and other device-tree boards)."""
    return _read(Path("/proc/device-tree/model"))


def cpu_model() -> str:
    text = _read(Path("/proc/cpuinfo")) or ""
    for key in ("model name", "Model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine()


def temperature_c() -> float | None:
    raw = _read(Path("/sys/class/thermal/thermal_zone0/temp"))
    try:
        return int(raw) / 1000.0 if raw else None
    except ValueError:
        return None


def throttled() -> int | None:
    """``vcgencmd get_throttled`` as an integer, or None where vcgencmd is absent."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "get_throttled"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"0x[0-9a-fA-F]+", out)
    return int(m.group(0), 16) if m else None


def snapshot() -> dict[str, Any]:
    """Things that change during a run (sample before and after)."""
    freq = _read(CPUFREQ / "scaling_cur_freq")
    thr = throttled()
    return {
        "temperature_c": temperature_c(),
        "cpu_freq_mhz": int(freq) / 1000.0 if freq and freq.isdigit() else None,
        "throttled": hex(thr) if thr is not None else None,
        "throttled_now": bool(thr & THROTTLED_NOW_MASK) if thr is not None else None,
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    import numpy

    versions: dict[str, str | None] = {
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
    }
    for dist in (
        "edge-pose",
        "ai-edge-litert",
        "tflite-runtime",
        "opencv-python-headless",
        "paho-mqtt",
        "amqtt",
    ):
        versions[dist] = _version(dist)
    return versions


def machine_info() -> dict[str, Any]:
    board = board_model()
    governor = _read(CPUFREQ / "scaling_governor")
    max_freq = _read(CPUFREQ / "cpuinfo_max_freq")
    uname = platform.uname()
    return {
        "board": board,
        "is_raspberry_pi": bool(board and "raspberry pi" in board.lower()),
        "cpu_model": cpu_model(),
        "machine": uname.machine,
        "kernel": uname.release,
        "hostname": uname.node,
        "cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)),
        "governor": governor,
        "cpu_max_freq_mhz": int(max_freq) / 1000.0 if max_freq and max_freq.isdigit() else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "versions": library_versions(),
    }


def flag_throttled(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True when either snapshot reports throttling now."""
    return bool(before.get("throttled_now") or after.get("throttled_now"))
