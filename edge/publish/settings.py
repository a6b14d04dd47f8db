"""MQTT connection and topic settings: one frozen value object, validated on creation.

Nothing here touches the network or imports paho. Secrets are passed in already
loaded (see :func:`read_secret`) and never appear in ``repr``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Protocol = Literal["3.1.1", "5"]
Encoding = Literal["json", "msgpack", "cbor"]

#: Longest node id accepted (it appears in topics, client ids and HA entity ids).
NODE_ID_MAX_CHARS = 64
#: Longest base topic accepted, in UTF-8 bytes (MQTT allows 65535; keep it sane).
BASE_TOPIC_MAX_BYTES = 200
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_FORBIDDEN_TOPIC_CHARS = frozenset("+#\x00")
_HA_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is safe as one MQTT topic level, else raise ``ValueError``.

    Rejected: empty, longer than :data:`NODE_ID_MAX_CHARS`, wildcards ``+``/``#``,
    ``/`` (it would add levels), NUL and other control characters, a leading ``$``
    (reserved for broker topics), and ``.``/``..`` (path tricks in bridges and tools).
    """
    if not isinstance(node_id, str) or not node_id:
        raise ValueError("node_id: must be a non-empty string")
    if len(node_id) > NODE_ID_MAX_CHARS:
        raise ValueError(f"node_id: at most {NODE_ID_MAX_CHARS} characters, got {len(node_id)}")
    bad = sorted({ch for ch in node_id if ch in _FORBIDDEN_TOPIC_CHARS or ch == "/"})
    if bad:
        raise ValueError(
            f"node_id: {node_id!r} contains {bad!r}; '+', '#', '/' and NUL are not allowed"
        )
    if _has_control_chars(node_id) or node_id != node_id.strip():
        raise ValueError(f"node_id: {node_id!r} has control characters or surrounding spaces")
    if node_id.startswith("$"):
        raise ValueError(f"node_id: {node_id!r} must not start with '$' (reserved by brokers)")
    if node_id in {".", ".."}:
        raise ValueError(f"node_id: {node_id!r} is not allowed")
    return node_id


def validate_base_topic(topic: str) -> str:
    """Return ``topic`` if it is a safe publish prefix, else raise ``ValueError``.

    Rejected: empty, too long, wildcards, NUL/control characters, a leading ``$``,
    a leading or trailing ``/``, empty levels (``a//b``) and ``.``/``..`` levels.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError("base_topic: must be a non-empty string")
    if len(topic.encode("utf-8")) > BASE_TOPIC_MAX_BYTES:
        raise ValueError(f"base_topic: at most {BASE_TOPIC_MAX_BYTES} bytes")
    bad = sorted({ch for ch in topic if ch in _FORBIDDEN_TOPIC_CHARS})
    if bad:
        raise ValueError(
            f"base_topic: {topic!r} contains {bad!r}; wildcards and NUL are not allowed"
        )
    if _has_control_chars(topic):
        raise ValueError(f"base_topic: {topic!r} has control characters")
    if topic.startswith("$"):
        raise ValueError(f"base_topic: {topic!r} must not start with '$' (reserved by brokers)")
    levels = topic.split("/")
    if any(level == "" for level in levels):
        raise ValueError(f"base_topic: {topic!r} has an empty level (leading, trailing or '//')")
    if any(level.strip() in {".", ".."} for level in levels):
        raise ValueError(f"base_topic: {topic!r} has a '.' or '..' level")
    return topic


def ha_object_id(text: str) -> str:
    """Home Assistant discovery ids allow ``[A-Za-z0-9_-]`` only: replace the rest with ``_``."""
    return _HA_ID_UNSAFE.sub("_", text)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """What a broker URL says: where, and whether to use TLS."""

    host: str
    port: int
    tls: bool
    username: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS, default port 8883).

    A user name may be given (``mqtt://user@host``); a password in the URL is
    rejected because URLs end up in logs and process lists: use a password file.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"url: {url!r}: scheme must be mqtt:// or mqtts://")
    if parts.password is not None:
        raise ValueError("url: a password in the broker URL is not allowed; use a password file")
    if not parts.hostname:
        raise ValueError(f"url: {url!r} has no host")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError(f"url: {url!r}: only scheme, host and port are allowed")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"url: {url!r}: bad port ({exc})") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=parts.username or None,
    )


def read_secret(path: str | Path | None = None, credential: str | None = None) -> str | None:
    """Read a secret (a password) from systemd's credentials or a file.

    ``credential`` names a file in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``)
    and wins when that directory is set; otherwise ``path`` is read. One trailing
    newline is removed. Errors name the file, never its content.
    """
    candidates: list[Path] = []
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if credential and cred_dir:
        candidates.append(Path(cred_dir) / credential)
    if path:
        candidates.append(Path(path))
    if not candidates:
        return None
    for candidate in candidates:
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"password_file: cannot read {candidate}: {type(exc).__name__}"
                ) from None
            return text[:-1] if text.endswith("\n") else text
    names = ", ".join(str(c) for c in candidates)
    raise ValueError(f"password_file: not found: {names}")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Everything the publisher needs. Build it once (from the config) and pass it in."""

    host: str = "127.0.0.1"
    port: int = 1883
    node_id: str = "edge-pose"
    #: Topic prefix; empty means ``edge-pose/<node_id>``.
    base_topic: str = ""
    tls: bool = False
    ca_file: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    #: Skip certificate and host name verification. Only when explicitly asked.
    tls_insecure: bool = False
    username: str | None = None
    #: The password itself (loaded with :func:`read_secret`), never a path. Not in repr.
    password: str | None = field(default=None, repr=False)
    protocol: Protocol = "3.1.1"
    #: Empty means ``edge-pose-<node_id>``.
    client_id: str = ""
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    #: Shown in Home Assistant's device registry; empty means ``edge-pose <node_id>``.
    device_name: str = ""
    configuration_url: str | None = None
    pose_qos: int = 0
    #: QoS of retained state topics (availability, presence, count, stats, discovery).
    state_qos: int = 1
    #: Pose messages kept while the broker is away (oldest dropped beyond it).
    pose_queue_max: int = 150
    #: At most this many pose messages per second (frame time); None = every frame.
    max_pose_rate_hz: float | None = None
    encoding: Encoding = "json"
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    mask_enabled: bool = False
    mask_rate_hz: float = 1.0
    mask_max_side_px: int = 64
    #: How long a clean stop waits for queued messages and ``stopped`` to go out.
    flush_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        validate_node_id(self.node_id)
        if not self.base_topic:
            object.__setattr__(self, "base_topic", f"edge-pose/{self.node_id}")
        validate_base_topic(self.base_topic)
        validate_base_topic(self.discovery_prefix)
        if not self.client_id:
            object.__setattr__(self, "client_id", f"edge-pose-{self.node_id}")
        if not self.device_name:
            object.__setattr__(self, "device_name", f"edge-pose {self.node_id}")
        if not self.host or _has_control_chars(self.host):
            raise ValueError("host: must be a non-empty host name or address")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not in 1..65535")
        if self.protocol not in ("3.1.1", "5"):
            raise ValueError(f"protocol: {self.protocol!r}; allowed: '3.1.1', '5'")
        if self.encoding not in ("json", "msgpack", "cbor"):
            raise ValueError(f"encoding: {self.encoding!r}; allowed: json, msgpack, cbor")
        for name in ("pose_qos", "state_qos"):
            if getattr(self, name) not in (0, 1, 2):
                raise ValueError(f"{name}: must be 0, 1 or 2")
        if self.pose_queue_max < 1:
            raise ValueError("pose_queue_max: must be >= 1")
        if self.max_pose_rate_hz is not None and not self.max_pose_rate_hz > 0:
            raise ValueError("max_pose_rate_hz: must be > 0 (or unset)")
        if not 5 <= self.keepalive_s <= 65535:
            raise ValueError("keepalive_s: must be in 5..65535")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("reconnect_min_s/reconnect_max_s: need 0 < min <= max")
        if not self.mask_rate_hz > 0 or not 8 <= self.mask_max_side_px <= 1024:
            raise ValueError("mask_rate_hz must be > 0 and mask_max_side_px in 8..1024")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile/keyfile: give both or neither")
        if self.tls_insecure and not self.tls:
            raise ValueError("tls_insecure: only meaningful with tls (mqtts://)")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs a username")
        if len(self.client_id) > 128 or _has_control_chars(self.client_id):
            raise ValueError("client_id: at most 128 printable characters")

    @property
    def url(self) -> str:
        """The broker as a URL (no credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"
