"""The bench's child processes: their ``/proc`` sizes, and stopping them.

Standard library only: ``bench.pipeline_server`` imports it on the side whose
memory is measured.
"""

from __future__ import annotations

import subprocess
from typing import IO


def vm_kib(field: str = "VmHWM", pid: int | str = "self") -> int | None:
    """A ``/proc/<pid>/status`` size in KiB (``VmHWM``: peak RSS, reset by exec;
    ``VmRSS``: now), or None where there is no such file."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def stop_child(
    proc: subprocess.Popen[bytes], stdin: IO[bytes], goodbye: bytes, timeout_s: float = 10.0
) -> None:
    """Ask a child to stop (``goodbye`` on its stdin, then EOF); kill it if it has not
    exited after ``timeout_s``."""
    try:
        stdin.write(goodbye)
        stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
