"""The systemd notify protocol (``sd_notify(3)``), without libsystemd.

A notification is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX``
socket named by ``$NOTIFY_SOCKET``. A leading ``@`` names a socket in the
abstract namespace. When the variable is unset (not started by systemd) every
call is a no-op that returns ``False``, so callers never need to check.

The watchdog interval comes from ``$WATCHDOG_USEC``, honoured only when
``$WATCHDOG_PID`` is unset or names this process, as ``sd_watchdog_enabled(3)``
specifies.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value (None when unusable)."""
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock:... and relative paths are not supported


class Notifier:
    """Sends notifications to the service manager; a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, notify_socket: str | None) -> None:
        self._address = _address(notify_socket or "")
        if notify_socket and self._address is None:
            logger.warning(
                "NOTIFY_SOCKET=%r is not a path or abstract name; ignoring it", notify_socket
            )
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        environ = os.environ if env is None else env
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when disabled or on error."""
        if self._address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            logger.warning("sd_notify %s failed: %s", lines[0] if lines else "", exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` with the monotonic time, as ``Type=notify-reload`` expects."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_ns(env: Mapping[str, str] | None = None) -> int | None:
    """Nanoseconds between watchdog pings (half of ``$WATCHDOG_USEC``), or None if off."""
    environ = os.environ if env is None else env
    raw_usec = environ.get("WATCHDOG_USEC", "")
    raw_pid = environ.get("WATCHDOG_PID", "")
    try:
        usec = int(raw_usec)
    except ValueError:
        return None
    if usec <= 0:
        return None
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec * 1000 // 2
