"""A small threaded HTTP server streaming JPEG frames as multipart/x-mixed-replace.

It serves what IP cameras serve (an MJPEG stream on ``/stream.mjpg``), from frames
decoded out of a real clip, on 127.0.0.1 and a free port. ``stop()`` closes the
listening socket and every open connection, like a camera that loses power;
``start()`` binds the same port again, like the camera coming back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "edgeposeframe"


def jpeg_frames_from_clip(path: Path, count: int, width: int = 320) -> list[bytes]:
    """The first `count` frames of a clip, resized to `width`, as JPEG bytes."""
    cap = cv2.VideoCapture(str(path))
    frames: list[bytes] = []
    try:
        while len(frames) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            h = round(bgr.shape[0] * width / bgr.shape[1])
            small = cv2.resize(bgr, (width, h), interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            frames.append(buf.tobytes())
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frames decoded from {path}")
    return frames


class MjpegServer:
    """Serve `frames` in a loop at `fps` to every client of ``http://127.0.0.1:PORT/stream.mjpg``."""

    def __init__(self, frames: Sequence[bytes], fps: float = 25.0, port: int = 0) -> None:
        self.frames = list(frames)
        self.fps = fps
        self.port = port or _free_port()
        self.frames_sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: Set to keep connections open but send nothing (a stalled camera).
        self.paused = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        self._stopping.clear()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                with owner._lock:
                    owner._connections.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                period_s = 1.0 / owner.fps
                i = 0
                next_s = time.monotonic()
                try:
                    while not owner._stopping.is_set():
                        if owner.paused.is_set():
                            time.sleep(0.01)
                            next_s = time.monotonic()
                            continue
                        jpg = owner.frames[i % len(owner.frames)]
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpg)}\r\n\r\n"
                        ).encode("ascii")
                        self.wfile.write(head + jpg + b"\r\n")
                        self.wfile.flush()
                        with owner._lock:
                            owner.frames_sent += 1
                        i += 1
                        next_s += period_s
                        time.sleep(max(0.0, next_s - time.monotonic()))
                except OSError:
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drop the listening socket and every client connection at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
