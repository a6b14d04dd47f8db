"""Drives MediaPipe's legacy pose solution frame by frame for ``--compare mediapipe``.

The MediaPipe side runs in the reference venv (``.venv-mediapipe``: mediapipe==0.10.14,
numpy<2) as a subprocess: the eval helper's ``bench/mediapipe_ref.py --serve`` (see
its docstring for the protocol). The bench decodes each frame once, runs our
pipeline on it, then sends the very same RGB bytes to that process, so both see
identical frames, interleaved, in one run. Each process measures its own CPU time
(``time.process_time_ns``, all its threads) around its ``process()`` call and its
own peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from bench.procs import stop_child, vm_kib

SERVER = Path(__file__).resolve().with_name("mediapipe_ref.py")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = REPO / ".venv-mediapipe" / "bin" / "python"


class MediaPipeUnavailableError(RuntimeError):
    """The reference venv is missing or the MediaPipe process died."""


@dataclass(frozen=True, slots=True)
class MediaPipeFrame:
    wall_ns: int
    cpu_ns: int
    peak_rss_kib: int
    #: (33, 5) x, y, z, visibility, presence; None when MediaPipe found no pose.
    landmarks: NDArray[np.float32] | None


class MediaPipeWorker:
    """One MediaPipe ``solutions.pose`` process (tracking mode), fed frame by frame."""

    def __init__(
        self,
        model_complexity: int,
        float_dir: Path | None,
        python: Path = DEFAULT_PYTHON,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        if not python.is_file():
            raise MediaPipeUnavailableError(
                f"{python} not found: --compare mediapipe needs the reference venv "
                "(`scripts/setup --dev` creates .venv-mediapipe with mediapipe==0.10.14)"
            )
        cmd = [
            str(python),
            str(SERVER),
            "--serve",
            "--model-complexity",
            str(model_complexity),
            "--min-detection-confidence",
            str(min_detection_confidence),
            "--min-tracking-confidence",
            str(min_tracking_confidence),
        ]
        if float_dir is not None:
            cmd += ["--float-models", str(float_dir)]
        self.started_ns = time.perf_counter_ns()
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: IO[bytes] = self._proc.stdin
        self._out: IO[bytes] = self._proc.stdout
        self.pid = self._proc.pid
        self.first_reply_ns: int | None = None
        self.first_landmarks_ns: int | None = None
        self._frame = 0

    def process(self, rgb: NDArray[np.uint8], source: str = "") -> MediaPipeFrame:
        h, w = rgb.shape[:2]
        header = {"width": w, "height": h, "frame": self._frame, "source": source}
        self._in.write((json.dumps(header) + "\n").encode())
        self._in.write(np.ascontiguousarray(rgb).tobytes())
        self._in.flush()
        line = self._out.readline()
        if not line:
            code = self._proc.wait(timeout=10)
            raise MediaPipeUnavailableError(f"MediaPipe process exited ({code})")
        reply: dict[str, Any] = json.loads(line)
        now = time.perf_counter_ns() - self.started_ns
        if self.first_reply_ns is None:
            self.first_reply_ns = now
        poses = reply["record"]["poses"]
        landmarks = None
        if poses:
            landmarks = np.asarray(poses[0]["landmarks"], dtype=np.float32)
            if self.first_landmarks_ns is None:
                self.first_landmarks_ns = now
        self._frame += 1
        # VmHWM from outside: ru_maxrss (the reply's max_rss_kb) carries the spawning
        # process's RSS over into the child on Linux.
        peak = vm_kib("VmHWM", self.pid)
        return MediaPipeFrame(
            int(reply["process_ns"]),
            int(reply["cpu_ns"]),
            peak if peak is not None else int(reply["max_rss_kb"]),
            landmarks,
        )

    def close(self) -> None:
        stop_child(self._proc, self._in, b"\n")
