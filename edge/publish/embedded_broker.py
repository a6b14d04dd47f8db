"""An embedded MQTT broker (amqtt) for machines without one: ``edge-pose run`` with no
broker configured, demos and tests of clients.

It runs in a background thread with its own asyncio loop. It binds to 127.0.0.1
unless told otherwise, and a non-loopback bind requires a user name and password
(stored argon2-hashed in a private temporary file, removed on stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmbeddedBroker:
    """``start()`` / ``stop()`` an amqtt broker on ``host:port`` (0 picks a free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not _is_loopback(host) and not (username and password):
            raise ValueError(
                f"embedded broker: binding to {host} exposes it to the network; "
                "give a username and password (or bind to 127.0.0.1)"
            )
        if (username is None) != (password is None):
            raise ValueError("embedded broker: give both username and password, or neither")
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._password_dir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        return f"EmbeddedBroker({self.host}:{self.port}, auth={self._username is not None})"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        plugins: dict[str, Any] = {}
        if self._username is not None and self._password is not None:
            from pwdlib import PasswordHash
            from pwdlib.hashers.argon2 import Argon2Hasher

            self._password_dir = tempfile.TemporaryDirectory(prefix="edge-pose-broker-")
            path = Path(self._password_dir.name) / "passwd"
            hashed = PasswordHash((Argon2Hasher(),)).hash(self._password)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{self._username}:{hashed}\n")
            plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {"password_file": str(path)}
        else:
            plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": True}
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": plugins,
        }

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        """Start listening; raises ``RuntimeError`` (with the reason) if it cannot."""
        if self._thread is not None:
            raise RuntimeError("embedded broker already started")
        if self.port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self.host, 0))
                self.port = sock.getsockname()[1]
        config = self._config()
        # amqtt and its state machine log every packet and transition at INFO; keep
        # them to warnings unless the application configured them itself.
        for name in ("amqtt", "transitions"):
            noisy = logging.getLogger(name)
            if noisy.level == logging.NOTSET:
                noisy.setLevel(logging.WARNING)
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="edge-pose-broker", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            self.stop()
            raise RuntimeError(f"embedded broker on {self.host}:{self.port} failed: {self._error}")
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)
        return self

    def _run(self, config: dict[str, Any]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_broker(config))
            if self._error is None:
                loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_broker(self, config: dict[str, Any]) -> None:
        try:
            from amqtt.broker import Broker

            self._broker = Broker(config)
            await self._broker.start()
        except BaseException as exc:  # report any start failure to start()
            self._error = exc
        finally:
            self._ready.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut the broker down and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            if self._broker is not None and self._error is None:
                future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
                try:
                    future.result(timeout=timeout_s)
                except Exception as exc:
                    log.warning("embedded broker: unclean shutdown: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=timeout_s)
        self._thread = None
        self._loop = None
        self._broker = None
        if self._password_dir is not None:
            self._password_dir.cleanup()
            self._password_dir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
