"""Our pose pipeline fed decoded frames over a pipe: the memory footing MediaPipe gets.

``--compare mediapipe`` hands MediaPipe's process frames that the bench has already
decoded, so its peak RSS holds no video decoder, no publisher and no bench harness.
This process is the same footing for us: Python, numpy, OpenCV and ``edge.pose``
with its two models (``edge.pose.build_pipeline``, after the manifest checksum
check), fed the very same RGB bytes. Its peak RSS is the headline memory ratio; the
bench's run process (capture, publisher, harness: the daemon's shape) is reported
next to it, labelled as such.

Protocol: ``python -m bench.pipeline_server MODEL PRECISION THREADS DELEGATE``; it
prints one JSON line ``{"ready": true, "rss_at_start_kib": ..., "rss_after_build_kib":
...}``, then per frame reads a ``<iiq`` header (width, height, timestamp ns; width 0
stops it) and ``width * height * 3`` bytes of RGB, and answers one JSON line
``{"poses": int, "cpu_ns": int, "wall_ns": int}``. Imports are kept to what a
program embedding the pipeline needs (no pydantic, paho, tqdm or bench modules but
the standard-library-only ``bench.procs``).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

from bench.procs import stop_child, vm_kib

HEADER = struct.Struct("<iiq")


def _read_exact(stream: object, view: memoryview) -> bool:
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return False
        got += n
    return True


def serve(model: str, precision: str, threads: int, delegate: str) -> int:
    rss_at_start = vm_kib()
    import numpy as np

    from edge.models import COMPLEXITY_NAMES, check_models
    from edge.pose import PoseOptions, build_pipeline

    complexity = {str(name): c for c, name in COMPLEXITY_NAMES.items()}[model]
    if precision == "int8":
        check_models(None, ("detector", model))
    options = PoseOptions(
        model_complexity=complexity,
        precision=precision,  # type: ignore[arg-type]
        num_threads=threads,
        delegate=delegate,  # type: ignore[arg-type]
    )
    pipeline = build_pipeline(options)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything the runtime prints goes to stderr, not into the protocol
    ready = {"ready": True, "rss_at_start_kib": rss_at_start, "rss_after_build_kib": vm_kib()}
    out.write(json.dumps(ready) + "\n")
    inp = sys.stdin.buffer
    header = bytearray(HEADER.size)
    buf = bytearray()
    while True:
        if not _read_exact(inp, memoryview(header)):
            return 0
        width, height, timestamp_ns = HEADER.unpack(header)
        if width <= 0:
            return 0
        size = width * height * 3
        if len(buf) != size:  # one frame buffer, reused while the size stays
            buf = bytearray(size)
        if not _read_exact(inp, memoryview(buf)):
            return 1
        rgb = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
        c0 = time.process_time_ns()
        w0 = time.perf_counter_ns()
        result = pipeline.process(rgb, timestamp_ns)
        w1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        reply = {"poses": len(result.poses), "cpu_ns": c1 - c0, "wall_ns": w1 - w0}
        out.write(json.dumps(reply) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        sys.stderr.write(__doc__ or "")
        return 2
    return serve(args[0], args[1], int(args[2]), args[3])


if __name__ == "__main__":
    sys.exit(main())


class PipelineProcess:
    """Client side: one pipeline server, fed the bench's decoded frames."""

    def __init__(self, model: str, precision: str, threads: int, delegate: str) -> None:
        import subprocess
        from pathlib import Path

        repo = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.pipeline_server",
                model,
                precision,
                str(threads),
                delegate,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=str(repo),
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin
        self._out = self._proc.stdout
        line = self._out.readline()
        if not line:
            raise RuntimeError(f"bench.pipeline_server exited ({self._proc.wait()}) before ready")
        self.ready: dict[str, int | None] = json.loads(line)
        self.pid = self._proc.pid
        self.peak_rss_kib = 0
        self.cpu_ns: list[int] = []
        self.poses: list[int] = []

    def process(self, rgb: object, timestamp_ns: int) -> None:
        """Send one RGB uint8 frame, wait for the answer, then read the server's peak RSS."""
        height, width = rgb.shape[:2]  # type: ignore[attr-defined]
        self._in.write(HEADER.pack(int(width), int(height), int(timestamp_ns)))
        import numpy as np

        self._in.write(memoryview(np.ascontiguousarray(rgb)).cast("B"))
        self._in.flush()
        line = self._out.readline()
        if not line:
            raise RuntimeError(f"bench.pipeline_server died (exit {self._proc.wait()})")
        reply = json.loads(line)
        self.cpu_ns.append(int(reply["cpu_ns"]))
        self.poses.append(int(reply["poses"]))
        peak = vm_kib("VmHWM", self.pid)
        if peak is not None:
            self.peak_rss_kib = max(self.peak_rss_kib, peak)

    def close(self) -> dict[str, float | None]:
        """Stop the server; its memory figures in MB."""
        stop_child(self._proc, self._in, HEADER.pack(0, 0, 0), timeout_s=30.0)

        def mb(kib: int | None) -> float | None:
            return round(kib / 1024.0, 2) if kib else None

        return {
            "peak_rss_mb": mb(self.peak_rss_kib),
            "rss_at_start_mb": mb(self.ready.get("rss_at_start_kib")),
            "rss_after_build_mb": mb(self.ready.get("rss_after_build_kib")),
        }
