"""A real mosquitto broker for tests, on a free 127.0.0.1 port, with a config file we write.

Small API::

    broker = Mosquitto.create(tmp_path)                       # anonymous
    broker = Mosquitto.create(tmp_path, users={"u": "pw"})    # password_file (mosquitto_passwd)
    tls = make_tls_files(tmp_path / "pki")                    # CA + server cert (openssl)
    broker = Mosquitto.create(tmp_path, tls=tls)
    broker.start(); broker.stop(); broker.kill(); broker.restart()   # same port every time
    broker.url, broker.port, broker.pid, broker.log_text()

Fixtures: ``mosquitto`` (an anonymous broker, started) and ``mosquitto_factory``
(``mosquitto_factory(**kwargs)`` -> a started broker); all are stopped at teardown.
Register them with ``pytest_plugins = ["tests.support.mosquitto"]``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def require_binaries(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: apt-get install -y mosquitto mosquitto-clients "
            "openssl (scripts/setup --dev does it)"
        )


def _mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("mosquitto not installed: apt-get install -y mosquitto (scripts/setup --dev)")


@dataclass(frozen=True)
class TlsFiles:
    """A test PKI: a CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls_files(directory: Path, name: str = "ca") -> TlsFiles:
    """Generate a CA and a server certificate (SAN: IP 127.0.0.1, DNS localhost) with openssl."""
    require_binaries("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / f"{name}.key", directory / f"{name}.crt"
    srv_key, srv_csr, srv_cert = (
        directory / "server.key",
        directory / "server.csr",
        directory / "server.crt",
    )
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=edge-pose test {name}", "-keyout", str(ca_key), "-out", str(ca_cert),
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(srv_key), "-out", str(srv_csr),
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(srv_csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(srv_cert),
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(ca_cert=ca_cert, ca_key=ca_key, server_cert=srv_cert, server_key=srv_key)


def write_password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file made by ``mosquitto_passwd -b`` (hashed)."""
    require_binaries("mosquitto_passwd")
    path.write_text("")
    for user, password in users.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(path), user, password], check=True, capture_output=True
        )
    path.chmod(0o600)
    return path


@dataclass
class Mosquitto:
    """One mosquitto process; the port survives stop/kill/restart."""

    workdir: Path
    port: int
    users: dict[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    persistence: bool = False
    extra_lines: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    _log_handle: Any = None

    @classmethod
    def create(
        cls,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = False,
        extra_lines: tuple[str, ...] = (),
    ) -> Mosquitto:
        workdir.mkdir(parents=True, exist_ok=True)
        broker = cls(
            workdir=workdir,
            port=free_port(),
            users=dict(users or {}),
            tls=tls,
            persistence=persistence,
            extra_lines=extra_lines,
        )
        broker.write_config()
        return broker

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{HOST}:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_config(self) -> None:
        lines = [f"listener {self.port} {HOST}", "log_dest stderr", "log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise mosquitto drops to 'mosquitto' and cannot read
        if self.users:
            pw = write_password_file(self.workdir / "passwd", self.users)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_cert}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.workdir}/",
                "queue_qos0_messages true",
                "max_queued_messages 5000",
            ]
        lines += list(self.extra_lines)
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        if self.running:
            return self
        self._log_handle = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [_mosquitto_binary(), "-c", str(self.conf_path)],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log_text()[-2000:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log_text()[-2000:]}")

    def _signal(self, sig: signal.Signals, timeout_s: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: a clean shutdown (persistence, if on, is written)."""
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a goodbye."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self, timeout_s: float = 10.0) -> Mosquitto:
        self.stop()
        return self.start(timeout_s)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    user_properties: tuple[tuple[str, str], ...] = ()


class MqttRecorder:
    """A real paho subscriber that records every message (thread-safe), for assertions.

    ``persistent=True`` uses a fixed client id and a persistent session (QoS 1
    subscriptions), so a broker with persistence queues messages for it while it
    is away (e.g. across a broker restart).
    """

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "",
        persistent: bool = False,
        protocol: str = "3.1.1",
        tls_ca: Path | None = None,
    ) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._topics = topics
        self.connected = threading.Event()
        proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"recorder-{os.getpid()}-{id(self)}",
            protocol=proto,
            clean_session=(not persistent) if proto == mqtt.MQTTv311 else None,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect_async(HOST, port, keepalive=10)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError(f"recorder could not connect to port {port}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        if flags.session_present:
            self.connected.set()  # the broker kept our subscriptions (persistent session)
        else:
            # `connected` is set on SUBACK, so no message published after it is missed.
            client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg, "properties", None)
        user = tuple(getattr(props, "UserProperty", []) or []) if props is not None else ()
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), user))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = 10.0
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


BrokerFactory = Callable[..., Mosquitto]


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerFactory]:
    """``factory(users=..., tls=..., persistence=..., extra_lines=...)`` -> a started broker."""
    require_binaries("mosquitto")
    brokers: list[Mosquitto] = []

    def factory(**kwargs: Any) -> Mosquitto:
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port may be taken by a parallel test
            broker = Mosquitto.create(tmp_path_factory.mktemp("mosquitto"), **kwargs)
            brokers.append(broker)
            try:
                return broker.start()
            except RuntimeError as exc:
                last_error = exc
        raise RuntimeError(f"could not start mosquitto: {last_error}")

    yield factory
    for broker in brokers:
        broker.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: BrokerFactory) -> Mosquitto:
    """An anonymous mosquitto on a free loopback port, started."""
    return mosquitto_factory()
