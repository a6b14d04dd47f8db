"""Fault injection for the reliability suite: the real daemon as a child process we can
poke, a broker impostor that hangs or slams the door during the MQTT handshake, a disk
that is full, a models folder we may corrupt, and readers for /proc (RSS, fds, threads,
listening sockets).

Small API::

    proc = DaemonProcess.start(config_path, tmp_path / "daemon.log")
    proc.wait_log(r"first frame processed", 60); proc.rss_kb(); proc.fd_count()
    rc = proc.stop()                        # SIGTERM, wait, exit status
    with HangingListener(port, mode="hang"): ...   # accepts, never answers CONNECT
    models = private_models_dir(tmp_path / "models")   # manifest + the two model files
    with full_disk(tmp_path / "full") as folder: ...   # a tiny tmpfs, filled up
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from edge import paths
from edge.models import float_file_name, int8_file_name

REPO = Path(__file__).resolve().parent.parent.parent
EDGE_POSE = [sys.executable, "-m", "edge"]


# --- configs, environments, clips ------------------------------------------------------------


def model_precision() -> str:
    """int8 when the built models are present, else the float originals (same code path)."""
    d = paths.models_dir()
    if (d / int8_file_name("detector")).is_file() and (d / int8_file_name("lite")).is_file():
        return "int8"
    return "float"


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def daemon_env(**extra: str) -> dict[str, str]:
    """The test's environment minus anything that would change the daemon's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_POSE_")}
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(key, None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.pop("STATE_DIRECTORY", None)
    env["EDGE_POSE_MODELS_DIR"] = str(paths.models_dir())
    env.update(extra)
    return env


def small_clip(
    src: Path, dst: Path, width: int = 192, frames: int = 120, fps: float = 30.0
) -> Path:
    """The first ``frames`` frames of a real clip, downscaled to ``width`` (cheap to decode),
    written at ``fps`` (a high rate with ``realtime`` paces capture near what inference does,
    so the capture thread does not burn a core decoding frames that are then dropped)."""
    cap = cv2.VideoCapture(str(src))
    writer: Any = None
    try:
        written = 0
        while written < frames:
            ok, bgr = cap.read()
            if not ok:
                break
            height = round(bgr.shape[0] * width / bgr.shape[1]) // 2 * 2
            if writer is None:
                fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                writer = cv2.VideoWriter(str(dst), fourcc, fps, (width, height))
            writer.write(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA))
            written += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not dst.is_file() or dst.stat().st_size == 0:
        raise RuntimeError(f"could not write {dst}")
    return dst


# --- the daemon as a child process --------------------------------------------------------------


@dataclass
class DaemonProcess:
    """``edge-pose run`` in a child process; stdout and stderr go to ``log_path``."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    _handle: Any = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        config: Path,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> DaemonProcess:
        handle = log_path.open("wb")
        proc = subprocess.Popen(
            [*EDGE_POSE, "run", "--config", str(config), *args],
            env=dict(env) if env is not None else daemon_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        return cls(proc, log_path, handle)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, pattern: str, timeout_s: float, *, count: int = 1) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) has matched ``count`` log lines; the last match."""
        deadline = time.monotonic() + timeout_s
        rx = re.compile(pattern)
        while True:
            matches = list(rx.finditer(self.log_text()))
            if len(matches) >= count:
                return matches[count - 1]
            if time.monotonic() > deadline or not self.alive():
                if len(list(rx.finditer(self.log_text()))) >= count:
                    continue
                raise AssertionError(
                    f"log never matched {pattern!r} x{count} (alive={self.alive()}):\n"
                    + self.log_text()[-4000:]
                )
            time.sleep(0.1)

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self._close()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` (if still running), wait, return the exit status (SIGKILL on timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"daemon ignored signal {sig} for {timeout_s} s") from None
        finally:
            self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # /proc readers
    def status(self) -> dict[str, str]:
        return proc_status(self.pid)

    def rss_kb(self) -> int:
        return int(self.status()["VmRSS"].split()[0])

    def threads(self) -> int:
        return int(self.status()["Threads"])

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def stop_piped(proc: subprocess.Popen[str], timeout_s: float = 30.0) -> tuple[int, str]:
    """SIGTERM a daemon started with ``stdout=PIPE`` (if still running), collect its
    output; SIGKILL on timeout. Returns (exit status, output)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def read_state(path: Path) -> dict[str, Any]:
    """The daemon's state file (last stats record); {} while it does not exist yet."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data


def wait_state(
    path: Path, predicate: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_state(path)
        if state and predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"state file {path} never satisfied the condition: {state}")
        time.sleep(0.2)


# --- sockets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    address: str
    port: int


def _hex_address(raw: str) -> str:
    addr_hex, _ = raw.split(":")
    data = bytes.fromhex(addr_hex)
    if len(data) == 4:
        return socket.inet_ntop(socket.AF_INET, data[::-1])
    words = b"".join(data[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_sockets(pid: int) -> list[Listener]:
    """TCP sockets in LISTEN state owned by ``pid`` (from /proc/net/tcp{,6} and its fds)."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    out: list[Listener] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    out.append(Listener(_hex_address(cols[1]), int(cols[1].split(":")[1], 16)))
    return out


class HangingListener:
    """A TCP listener on ``port`` that is not a broker.

    ``mode="close"`` accepts and closes at once (the handshake dies); ``mode="hang"``
    accepts and never answers the CONNECT. Accepted connections stay open until
    :meth:`close`, even after the listening socket is closed by :meth:`stop_listening`,
    so a client has to time the handshake out by itself.
    """

    def __init__(self, port: int, mode: str = "hang", host: str = "127.0.0.1") -> None:
        if mode not in ("hang", "close"):
            raise ValueError(mode)
        self.mode = mode
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hanging-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "close":
                with contextlib.suppress(OSError):
                    conn.recv(1024)  # the CONNECT packet, then goodbye
                conn.close()
            else:
                self._conns.append(conn)

    def stop_listening(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def close(self) -> None:
        self.stop_listening()
        for conn in self._conns:
            conn.close()
        self._conns.clear()

    def __enter__(self) -> HangingListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- models -------------------------------------------------------------------------------------


def private_models_dir(directory: Path) -> Path:
    """A models folder of our own (so we may corrupt it): the detector and lite models
    and a manifest with their sha256. The committed int8 models when they exist, else the
    float originals under the int8 names (the runtime reads the tensor types from the file,
    so the same checksum and load code runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["schema = 1", ""]
    for role in ("detector", "lite"):
        name = int8_file_name(role)  # type: ignore[arg-type]
        src = paths.models_dir() / name
        if not src.is_file():
            src = paths.float_models_dir() / float_file_name(role)  # type: ignore[arg-type]
        dst = directory / name
        shutil.copyfile(src, dst)
        digest = hashlib.sha256(dst.read_bytes()).hexdigest()
        lines += [
            f"[models.{role}]",
            f'file = "{name}"',
            f'sha256 = "{digest}"',
            f"size_bytes = {dst.stat().st_size}",
            "",
        ]
    (directory / "manifest.toml").write_text("\n".join(lines), encoding="utf-8")
    return directory


# --- a full disk --------------------------------------------------------------------------------


@contextlib.contextmanager
def full_disk(folder: Path, names: tuple[str, ...] = (), size_kb: int = 64) -> Iterator[str]:
    """A folder on which writes fail with ENOSPC: a tiny tmpfs filled to the brim when we
    may mount (yields "tmpfs"); otherwise each of ``names`` (and the ``.NAME.tmp`` file an
    atomic writer uses) is made a symlink to /dev/full, which fails every write with
    ENOSPC too (yields "/dev/full")."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0777", "tmpfs", str(folder)],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
    except OSError:  # no mount(8) here
        mounted = False
    try:
        if mounted:
            with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            yield "tmpfs"
        else:
            for name in names:
                for link in (folder / name, folder / f".{name}.tmp"):
                    link.unlink(missing_ok=True)
                    link.symlink_to("/dev/full")
            yield "/dev/full"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
