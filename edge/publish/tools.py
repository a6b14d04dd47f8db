"""One-shot broker operations for the command line: test a connection, clear a node."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.publish import discovery
from edge.publish.connection import AUTH_FAILURE_CODES, build_paho_client
from edge.publish.settings import MqttSettings
from edge.publish.topics import Topics

if TYPE_CHECKING:
    import paho.mqtt.client as paho


@dataclass(frozen=True, slots=True)
class ConnectOutcome:
    """What a connection attempt found out."""

    ok: bool
    #: ``ok``, ``network``, ``tls``, ``auth`` or ``refused``.
    kind: str
    detail: str


def connect_blocking(
    settings: MqttSettings, client_id: str, timeout_s: float = 10.0
) -> tuple[paho.Client | None, ConnectOutcome]:
    """Connect once and wait for CONNACK. On success the client's network loop runs."""
    import ssl

    client = build_paho_client(settings, client_id)
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        result["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, settings.keepalive_s)
    except ssl.SSLError as exc:
        return None, ConnectOutcome(False, "tls", f"TLS handshake failed: {exc}")
    except OSError as exc:
        return None, ConnectOutcome(False, "network", f"{type(exc).__name__}: {exc}")
    client.loop_start()
    if not done.wait(timeout_s):
        client.loop_stop()
        return None, ConnectOutcome(False, "network", f"no CONNACK within {timeout_s:.0f} s")
    reason = result["reason"]
    if reason.is_failure:
        client.disconnect()
        client.loop_stop()
        code = int(reason.value)
        kind = "auth" if code in AUTH_FAILURE_CODES else "refused"
        return None, ConnectOutcome(False, kind, f"{reason} (0x{code:02X})")
    return client, ConnectOutcome(True, "ok", "connected")


def check_connection(settings: MqttSettings, timeout_s: float = 10.0) -> ConnectOutcome:
    """Connect, then disconnect cleanly (nothing is published)."""
    client, outcome = connect_blocking(settings, f"{settings.client_id}-test", timeout_s)
    if client is not None:
        client.disconnect()
        client.loop_stop()
    return outcome


def node_retained_topics(settings: MqttSettings) -> list[str]:
    """Every retained topic a node may have left: discovery configs and state topics."""
    return discovery.config_topics(settings) + list(Topics(settings.base_topic).state_topics())


def remove_node(
    settings: MqttSettings, timeout_s: float = 10.0
) -> tuple[ConnectOutcome, list[str]]:
    """Clear a node's retained discovery configs and state (empty retained payloads).

    Home Assistant removes the entities (and the device) when their config is cleared.
    """
    client, outcome = connect_blocking(settings, f"{settings.client_id}-remove", timeout_s)
    if client is None:
        return outcome, []
    cleared: list[str] = []
    infos = []
    for topic in node_retained_topics(settings):
        infos.append((topic, client.publish(topic, b"", qos=1, retain=True)))
    for topic, info in infos:
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=timeout_s)
        if info.is_published():
            cleared.append(topic)
    client.disconnect()
    client.loop_stop()
    if len(cleared) != len(infos):
        return ConnectOutcome(False, "network", "not every clear was acknowledged"), cleared
    return outcome, cleared
