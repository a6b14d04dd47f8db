"""The real daemon speaks sd_notify to a real AF_UNIX datagram socket this test owns:
READY=1 only once a frame went through, WATCHDOG=1 while frames flow, none while the
camera (a real MJPEG-over-HTTP stream) stalls, and pings again when it recovers."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.faults import (
    EDGE_POSE,
    daemon_env,
    model_precision,
    stop_piped,
    write_config,
)
from tests.support.mjpeg_server import MjpegServer, jpeg_frames_from_clip
from tests.support.mosquitto import free_port

WATCHDOG_USEC = 1_000_000  # systemd would then expect a ping every 0.5 s


@dataclass(frozen=True)
class Notification:
    received_s: float
    fields: tuple[str, ...]


class NotifySocket:
    """A bound datagram socket recording every notification, like systemd's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[Notification] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            item = Notification(time.monotonic(), tuple(data.decode().split("\n")))
            with self._cond:
                self.items.append(item)
                self._cond.notify_all()

    def count(self, field: str, since: int = 0) -> int:
        with self._cond:
            return sum(field in n.fields for n in self.items[since:])

    def mark(self) -> int:
        with self._cond:
            return len(self.items)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        self._closing = True
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


@pytest.mark.slow
def test_ready_after_first_frame_and_watchdog_only_while_frames_flow(
    tmp_path: Path, shared_data: Path, notify_socket: NotifySocket
) -> None:
    frames = jpeg_frames_from_clip(shared_data / "video" / "dance.mp4", 40, width=256)
    camera = MjpegServer(frames, fps=10.0)
    camera.paused.set()  # the camera is up but delivers nothing yet
    camera.start()
    config = write_config(
        tmp_path / "config.toml",
        {
            "source": {
                "uri": camera.url,
                "stall_timeout_s": 1.5,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 1.0,
            },
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {"embedded_port": free_port()},
            "stats": {"interval_s": 1.0},
        },
    )
    env = daemon_env(
        NOTIFY_SOCKET=str(notify_socket.path),
        WATCHDOG_USEC=str(WATCHDOG_USEC),
    )
    proc = subprocess.Popen(
        [*EDGE_POSE, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # No frame yet: the daemon gets as far as waiting for one, and must not claim to
        # be ready (nor ping) while it waits.
        waiting = "STATUS=starting: opening the source, waiting for the first frame"
        assert notify_socket.wait_for(lambda: notify_socket.count(waiting) == 1, 90)
        time.sleep(3.0)
        assert proc.poll() is None
        assert notify_socket.count("READY=1") == 0
        assert notify_socket.count("WATCHDOG=1") == 0
        assert camera.frames_sent == 0

        camera.paused.clear()
        started_s = time.monotonic()
        assert notify_socket.wait_for(lambda: notify_socket.count("READY=1") == 1, 90)
        ready_s = next(n.received_s for n in notify_socket.items if "READY=1" in n.fields)
        assert camera.frames_sent > 0
        # Frames flow: periodic pings.
        assert notify_socket.wait_for(lambda: notify_socket.count("WATCHDOG=1") >= 4, 60)
        pings = [n.received_s for n in notify_socket.items if "WATCHDOG=1" in n.fields]
        assert all(p > ready_s for p in pings), "no watchdog ping before READY=1"
        statuses = [f for n in notify_socket.items for f in n.fields if f.startswith("STATUS=")]
        assert any("fps" in s for s in statuses)

        # The camera stalls: after the frames in flight, no more pings.
        camera.paused.set()
        time.sleep(3.0)  # the frames in flight are processed, one last ping may follow
        stalled_from = notify_socket.mark()
        time.sleep(4.0)
        assert proc.poll() is None
        assert notify_socket.count("WATCHDOG=1", since=stalled_from) == 0

        # It comes back: the capture reconnects and pings resume.
        camera.paused.clear()
        resumed_from = notify_socket.mark()
        assert notify_socket.wait_for(
            lambda: notify_socket.count("WATCHDOG=1", since=resumed_from) >= 2, 60
        )
        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again, same process.
        proc.send_signal(signal.SIGHUP)
        assert notify_socket.wait_for(lambda: notify_socket.count("READY=1") == 2, 60)
        reloading = [n.fields for n in notify_socket.items if "RELOADING=1" in n.fields]
        assert len(reloading) == 1
        assert reloading[0][1].startswith("MONOTONIC_USEC=")
        assert proc.poll() is None
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        print(
            f"time to READY after frames started {ready_s - started_s:.2f} s; "
            f"watchdog pings every {sorted(gaps)[len(gaps) // 2]:.2f} s (median)"
        )
    finally:
        rc, out = stop_piped(proc)
        camera.stop()
    assert rc == 0, out[-3000:]
    assert notify_socket.count("STOPPING=1") == 1
    assert "withholding the watchdog ping" in out


def test_abstract_notify_socket_and_end_of_file(tmp_path: Path, shared_data: Path) -> None:
    """An abstract NOTIFY_SOCKET (leading @) works; the end of a file stops the daemon with 0.

    (Without NOTIFY_SOCKET the notifications are no-ops: every other daemon test runs so.)"""
    name = f"edge-pose-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind(b"\0" + name.encode())
    abstract.settimeout(90)
    config = write_config(
        tmp_path / "config.toml",
        {
            "source": {"uri": str(shared_data / "video" / "pose_squats.mp4"), "realtime": False},
            "models": {"precision": model_precision(), "threads": 1},
            "mqtt": {"embedded_port": free_port()},
        },
    )
    try:
        # The clip ends (loop = false): the daemon stops by itself with status 0.
        proc = subprocess.run(
            [*EDGE_POSE, "run", "--config", str(config)],
            env=daemon_env(NOTIFY_SOCKET=f"@{name}"),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        received = []
        while not any("READY=1" in m for m in received):
            received.append(abstract.recv(4096).decode())
        assert received[0].startswith("STATUS=starting"), received
        assert received[-1].split("\n")[0] == "READY=1"
        assert "source ended" in proc.stderr
        assert "stopped after" in proc.stderr
    finally:
        abstract.close()
