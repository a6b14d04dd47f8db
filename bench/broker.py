"""The broker a bench run publishes to: ``none``, a URL, or ``embedded``.

``embedded`` starts the product's embedded broker (``edge.publish.broker``) on a free
loopback port in the parent bench process; where that module is absent it falls back
to a ``mosquitto`` binary on PATH (also a real broker), and says which it used.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerHandle:
    url: str | None
    kind: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def _embedded_product() -> Callable[[int], Any] | None:
    try:
        from edge.publish import broker as embedded  # type: ignore[attr-defined]
    except ImportError:
        return None
    start = getattr(embedded, "start_embedded_broker", None)
    return start if callable(start) else None


@contextlib.contextmanager
def open_broker(spec: str) -> Iterator[BrokerHandle]:
    """Yield where to publish for ``spec`` (``none``, ``embedded`` or ``mqtt://...``)."""
    if spec in ("", "none"):
        yield BrokerHandle(None, "none")
        return
    if spec != "embedded":
        yield BrokerHandle(spec, "given")
        return
    port = free_port()
    start = _embedded_product()
    if start is not None:
        handle = start(port)
        try:
            if not _wait_port(port):
                raise RuntimeError(f"the embedded broker did not listen on 127.0.0.1:{port}")
            yield BrokerHandle(f"mqtt://127.0.0.1:{port}", "embedded (edge.publish.broker)")
        finally:
            stop = getattr(handle, "stop", None) or getattr(handle, "close", None)
            if stop is not None:
                stop()
        return
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None
    )
    if exe is None:
        raise RuntimeError(
            "--broker embedded: no embedded broker available (edge.publish.broker) and no "
            "mosquitto binary; pass --broker mqtt://HOST:PORT or --broker none"
        )
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            if not _wait_port(port):
                raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{port}")
            yield BrokerHandle(f"mqtt://127.0.0.1:{port}", "mosquitto (local)")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
