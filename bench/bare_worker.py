"""The bare landmark model, invoked on request, in its own process.

The pipeline's overhead ratio (issue 3: per-frame CPU time of the whole pipeline over
the bare landmark-model invoke time) needs the bare invoke measured in the same run.
Running it in a separate process keeps its interpreter out of the pipeline process's
peak RSS and CPU accounting; the bench asks for one invoke between frames, so the two
never run at the same time.

Protocol: ``python -m bench.bare_worker MODEL THREADS DELEGATE``; it prints ``ready``
then, for each byte ``i`` on stdin, invokes once and answers ``<qq`` (CPU ns of this
process during the invoke, wall ns). ``q`` or end of input stops it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np

from bench.procs import stop_child

REPLY = struct.Struct("<qq")
SEED = 20240508


def serve(model_path: str, threads: int, delegate: str) -> int:
    from edge.runtime import load_model

    model = load_model(model_path, num_threads=threads, delegate=delegate)  # type: ignore[arg-type]
    info = model.inputs[0]
    rng = np.random.default_rng(SEED)
    if info.dtype.kind == "f":
        data = rng.random(info.shape, dtype=np.float32)
    else:
        limits = np.iinfo(info.dtype)
        data = rng.integers(limits.min, limits.max, size=info.shape, dtype=info.dtype)
    model.input_buffer()[...] = data
    model.invoke()  # first invoke: XNNPACK set-up, not measured
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    out.write(b"ready\n")
    inp = sys.stdin.buffer
    while True:
        cmd = inp.read(1)
        if cmd != b"i":
            return 0
        c0 = time.process_time_ns()
        w0 = time.perf_counter_ns()
        model.invoke()
        w1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        out.write(REPLY.pack(c1 - c0, w1 - w0))


class BareModel:
    """Client side: one bare-model process."""

    def __init__(self, model_path: Path, threads: int, delegate: str) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_worker", str(model_path), str(threads), delegate],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: IO[bytes] = self._proc.stdin
        self._out: IO[bytes] = self._proc.stdout
        if self._out.readline().strip() != b"ready":
            self._proc.wait(timeout=10)
            raise RuntimeError(f"bare landmark model {model_path} did not load")

    def invoke(self) -> tuple[int, int]:
        """One invoke: (cpu_ns, wall_ns) as measured inside the worker."""
        self._in.write(b"i")
        self._in.flush()
        data = self._out.read(REPLY.size)
        if len(data) != REPLY.size:
            raise RuntimeError("bare landmark model process died")
        cpu_ns, wall_ns = REPLY.unpack(data)
        return int(cpu_ns), int(wall_ns)

    def close(self) -> None:
        stop_child(self._proc, self._in, b"q")


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
