"""Drive ``bench/mediapipe_ref.py --serve`` (MediaPipe's legacy pose solution) from edge's venv.

MediaPipe lives in its own interpreter (``.venv-mediapipe``: numpy<2), so it
runs as a subprocess; frames go over its stdin as raw RGB so both sides see the
very same decoded pixels. Used by the accuracy tests, the scoreboard and
``edge-pose bench --compare mediapipe``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from edge import paths

#: The reference runner script, in the source tree.
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "mediapipe_ref.py"


@dataclass(frozen=True, slots=True)
class ReferenceFrame:
    """MediaPipe's answer for one frame, with its cost."""

    record: dict[str, Any]
    process_ns: int
    cpu_ns: int
    max_rss_kb: int


@dataclass(frozen=True, slots=True)
class ReferenceOptions:
    model_complexity: int = 0
    static_image_mode: bool = False
    smooth_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def argv(self) -> list[str]:
        args = [
            "--model-complexity",
            str(self.model_complexity),
            "--min-detection-confidence",
            str(self.min_detection_confidence),
            "--min-tracking-confidence",
            str(self.min_tracking_confidence),
        ]
        if self.static_image_mode:
            args.append("--static")
        if not self.smooth_landmarks:
            args.append("--no-smooth")
        return args


class MediaPipeServer:
    """One long-lived MediaPipe reference process, fed frame by frame."""

    def __init__(
        self,
        python: Path,
        options: ReferenceOptions = ReferenceOptions(),
        float_models_dir: Path | None = None,
        script: Path = SCRIPT,
    ) -> None:
        cmd = [str(python), str(script), "--serve", *options.argv()]
        cmd += ["--float-models", str(float_models_dir or paths.float_models_dir())]
        # stderr to a file: MediaPipe's logging must never fill a pipe nobody reads.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._frame = 0

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("MediaPipe reference process has no pipes")
        return stdin, stdout

    def process(
        self,
        rgb: NDArray[np.uint8],
        source: str = "",
        frame: int | None = None,
        reset: bool = False,
    ) -> ReferenceFrame:
        """Send one RGB frame; ``reset`` starts a fresh solution (a new clip) first."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        stdin, stdout = self._pipes()
        index = self._frame if frame is None else frame
        header = {"width": rgb.shape[1], "height": rgb.shape[0], "frame": index, "source": source}
        if reset:
            header["reset"] = True
        try:
            stdin.write(json.dumps(header).encode() + b"\n")
            stdin.write(np.ascontiguousarray(rgb).tobytes())
            stdin.flush()
            line = stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            raise RuntimeError(f"MediaPipe reference process died: {self._stderr_tail()}")
        self._frame = index + 1
        reply = json.loads(line)
        return ReferenceFrame(
            record=reply["record"],
            process_ns=int(reply["process_ns"]),
            cpu_ns=int(reply["cpu_ns"]),
            max_rss_kb=int(reply["max_rss_kb"]),
        )

    def _stderr_tail(self) -> str:
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                stdin, _ = self._pipes()
                stdin.write(b"\n")
                stdin.close()
                self._proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> MediaPipeServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def iter_video_rgb(path: Path) -> Iterator[NDArray[np.uint8]]:
    """Decode a video file to RGB frames with OpenCV (the same decoder for both sides)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            rgb: NDArray[np.uint8] = np.asarray(
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8
            )
            yield rgb
    finally:
        cap.release()


def read_image_rgb(path: Path) -> NDArray[np.uint8]:
    """An image file as RGB uint8."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    rgb: NDArray[np.uint8] = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    return rgb


def run_reference(
    python: Path,
    frames: Iterator[NDArray[np.uint8]],
    options: ReferenceOptions = ReferenceOptions(),
    source: str = "",
    float_models_dir: Path | None = None,
) -> list[ReferenceFrame]:
    """MediaPipe's output for a sequence of frames (one fresh solution)."""
    with MediaPipeServer(python, options, float_models_dir) as server:
        return [server.process(rgb, source) for rgb in frames]
