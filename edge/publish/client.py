"""The MQTT publisher: paho-mqtt (callback API v2) behind a small, non-blocking API.

Threads: paho's network thread (``loop_start``: connect, reconnect, keepalive,
callbacks) and one sender thread that drains the :class:`~edge.publish.outbox.Outbox`
and encodes payloads. The frame loop only calls :meth:`Publisher.publish_result`,
which appends to the outbox in O(1) and never waits for the network.

Reconnects use exponential backoff with full jitter. An authentication or
authorisation refusal (MQTT 3.1.1 CONNACK 4/5, MQTT 5 0x86/0x87 and friends)
stops retrying and says so in ``counters.last_error``; network failures keep
retrying. The password is never logged and never part of a repr.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import random
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.pose.types import FloatArray, PoseResult
from edge.publish import discovery
from edge.publish.backoff import Backoff
from edge.publish.connection import AUTH_FAILURE_CODES, build_paho_client, tls_context
from edge.publish.encoding import CONTENT_TYPES, encode_mask_png, encode_pose
from edge.publish.outbox import Outbox, OutMessage, Payload
from edge.publish.settings import MqttSettings
from edge.publish.topics import (
    OFFLINE,
    ONLINE,
    PRESENCE_OFF,
    PRESENCE_ON,
    STOPPED,
    Topics,
)

if TYPE_CHECKING:
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

__all__ = [
    "AUTH_FAILURE_CODES",
    "Publisher",
    "PublisherCounters",
    "build_paho_client",
    "tls_context",
]

#: Payloads on ``homeassistant/status`` longer than this are ignored unread.
MAX_STATUS_PAYLOAD_BYTES = 64
_SEND_BATCH = 64
#: Re-announcements on ``homeassistant/status`` are logged at most this often (seconds).
ANNOUNCE_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class PublisherCounters:
    """A snapshot of the publisher's health, for stats and tests."""

    connected: bool
    auth_failed: bool
    last_error: str | None
    connects: int
    disconnects: int
    #: Connection attempts that failed (network, TLS or refused by the broker).
    connect_failures: int
    pose_enqueued: int
    pose_sent: int
    #: Pose messages lost: queue overflow while the broker was away, plus QoS 0
    #: messages handed to a connection that died before they were written.
    pose_dropped: int
    pose_rate_limited: int
    pose_pending: int
    messages_sent: int
    encode_errors: int


class Publisher:
    """Publishes a node's poses and state; see the module docstring.

    Single producer: call ``publish_*`` from one thread (the frame loop).
    """

    def __init__(self, settings: MqttSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.base_topic)
        self._outbox = Outbox(settings.pose_queue_max)
        self._backoff = Backoff(
            settings.reconnect_min_s, settings.reconnect_max_s, rng or random.Random()
        )
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop_sender = False
        self._client: paho.Client | None = None
        self._sender: threading.Thread | None = None
        self._generation = 0
        self._last_state: dict[str, OutMessage] = {}
        self._stopping_disconnect = False
        self._inflight: deque[tuple[Any, int, bool, int]] = deque()
        self._inflight_lock = threading.Lock()
        # counters (guarded by self._lock where several threads write)
        self._auth_failed = False
        self._last_error: str | None = None
        self._connects = 0
        self._disconnects = 0
        self._connect_failures = 0
        self._pose_sent = 0
        self._pose_lost_in_flight = 0
        self._pose_rate_limited = 0
        self._messages_sent = 0
        self._encode_errors = 0
        self._outage_started: float | None = None
        self._outage_drops_logged = False
        self._announce_logged_s = -math.inf
        # producer-side state (frame loop only)
        self._last_count: int | None = None
        self._pose_due_ns: int | None = None
        self._last_mask_ts_ns: int | None = None
        self._min_pose_interval_ns = (
            int(1e9 / settings.max_pose_rate_hz) if settings.max_pose_rate_hz else 0
        )
        self._min_mask_interval_ns = int(1e9 / settings.mask_rate_hz)

    def __repr__(self) -> str:
        return f"Publisher({self.settings.url}, base={self.settings.base_topic!r})"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background; returns at once. Raises ``ValueError`` on bad TLS files."""
        if self._client is not None:
            raise RuntimeError("Publisher already started")
        client = self._make_client()
        self._client = client
        self._sender = threading.Thread(
            target=self._send_loop, name=f"edge-pose-mqtt-send-{self.settings.node_id}", daemon=True
        )
        self._sender.start()
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        client.loop_start()
        log.info("MQTT: connecting to %s as %r", self.settings.url, self.settings.client_id)

    def stop(self, clean: bool = True, timeout_s: float | None = None) -> None:
        """Stop. ``clean``: flush what is queued, publish ``stopped`` and disconnect
        (the broker then discards the ``offline`` last will). Not clean: drop the
        connection without DISCONNECT, so the broker publishes the will."""
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + (
            self.settings.flush_timeout_s if timeout_s is None else timeout_s
        )
        if clean and self._connected.is_set():
            self._wait_drained(deadline)
        with self._outbox.condition:
            self._stop_sender = True
            self._outbox.condition.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=max(0.1, deadline - time.monotonic()) + 1.0)
        if clean:
            if self._connected.is_set():
                from paho.mqtt.client import MQTT_ERR_SUCCESS

                info = client.publish(self.topics.availability, STOPPED, qos=1, retain=True)
                if info.rc == MQTT_ERR_SUCCESS:
                    with contextlib.suppress(RuntimeError, ValueError):
                        info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
                    if not info.is_published():
                        log.warning("MQTT: 'stopped' was not acknowledged before the timeout")
            self._stopping_disconnect = True
            client.disconnect()
        else:
            # No DISCONNECT: the broker sees the connection drop and sends the will.
            client.reconnect_delay_set(min_delay=3600, max_delay=3600)
            sock = client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        client.loop_stop()
        self._connected.clear()
        self._reconcile_all()
        self._client = None
        log.info("MQTT: stopped (%s)", "clean" if clean else "abort")

    def wait_connected(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until connected (for start-up checks and tests)."""
        return self._connected.wait(timeout_s)

    # ------------------------------------------------------------------ producer API
    def publish_result(self, result: PoseResult, frame_index: int, source: str) -> None:
        """Queue one frame's outcome: O(1), never blocks on the network.

        ``<base>/pose`` gets a message when the frame has people, and one (empty)
        when the last person leaves; presence and count are published on change.
        The optional rate limit runs on frame time (``result.timestamp_ns``).
        """
        count = len(result.poses)
        previous = self._last_count
        ts_ns = result.timestamp_ns
        if count > 0 or (previous is not None and previous > 0):
            interval = self._min_pose_interval_ns
            due = self._pose_due_ns
            # Rate limit on a grid of frame times, so 30 fps limited to 10 Hz gives 10 Hz;
            # a person appearing or leaving is always published.
            limited = (
                count > 0
                and previous is not None
                and previous > 0
                and due is not None
                and ts_ns < due
            )
            if limited:
                self._pose_rate_limited += 1
            else:
                payload = functools.partial(
                    encode_pose, result, frame_index, source, self.settings.encoding
                )
                msg = OutMessage(self.topics.pose, payload, self.settings.pose_qos, False)
                awake = self._connected.is_set()
                if self._outbox.put_pose(msg, notify=awake) and not self._outage_drops_logged:
                    self._outage_drops_logged = True
                    log.warning(
                        "MQTT: pose queue full (%d): dropping the oldest pose messages until "
                        "the broker is back",
                        self.settings.pose_queue_max,
                    )
                if interval:
                    next_due = due if due is not None and ts_ns < due + interval else ts_ns
                    self._pose_due_ns = next_due + interval
        if previous is None or count != previous:
            if previous is None or (count > 0) != (previous > 0):
                self._put_state(self.topics.presence, PRESENCE_ON if count else PRESENCE_OFF)
            self._put_state(self.topics.count, str(count))
        self._last_count = count
        if self.settings.mask_enabled and result.segmentation is not None:
            self.publish_mask(result.segmentation, ts_ns)

    def publish_mask(self, mask: FloatArray, timestamp_ns: int) -> None:
        """Queue a downscaled PNG of a segmentation mask, at most ``mask_rate_hz`` (frame time)."""
        if not self.settings.mask_enabled:
            return
        last = self._last_mask_ts_ns
        if last is not None and timestamp_ns - last < self._min_mask_interval_ns:
            return
        self._last_mask_ts_ns = timestamp_ns
        payload = functools.partial(encode_mask_png, mask, self.settings.mask_max_side_px)
        self._outbox.put_state(OutMessage(self.topics.mask, payload, 0, False))

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Queue the retained stats record; the publisher adds its own counters
        (``dropped_messages`` and an ``mqtt`` section) when it is sent."""
        snapshot = dict(stats)
        self._put_state(self.topics.stats, functools.partial(self._render_stats, snapshot))

    @property
    def counters(self) -> PublisherCounters:
        self._reconcile(self._inflight)
        with self._lock:
            return PublisherCounters(
                connected=self._connected.is_set(),
                auth_failed=self._auth_failed,
                last_error=self._last_error,
                connects=self._connects,
                disconnects=self._disconnects,
                connect_failures=self._connect_failures,
                pose_enqueued=self._outbox.pose_enqueued,
                pose_sent=self._pose_sent,
                pose_dropped=self._outbox.pose_dropped + self._pose_lost_in_flight,
                pose_rate_limited=self._pose_rate_limited,
                pose_pending=self._outbox.pending_poses(),
                messages_sent=self._messages_sent,
                encode_errors=self._encode_errors,
            )

    # ------------------------------------------------------------------ internals
    def _put_state(self, topic: str, payload: str | Payload, *, first: bool = False) -> None:
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        msg = OutMessage(topic, data, self.settings.state_qos, True)
        with self._lock:
            self._last_state[topic] = OutMessage(topic, data, self.settings.state_qos, True)
        self._outbox.put_state(msg, first=first, notify=self._connected.is_set())

    def _render_stats(self, stats: dict[str, Any]) -> bytes:
        c = self.counters
        record = dict(stats)
        record.setdefault("dropped_messages", c.pose_dropped)
        record["mqtt"] = {
            "connected": c.connected,
            "connects": c.connects,
            "disconnects": c.disconnects,
            "pose_enqueued": c.pose_enqueued,
            "pose_sent": c.pose_sent,
            "pose_dropped": c.pose_dropped,
            "pose_rate_limited": c.pose_rate_limited,
            "pose_pending": c.pose_pending,
            "messages_sent": c.messages_sent,
            "last_error": c.last_error,
        }
        return json.dumps(_finite(record), separators=(",", ":"), default=str).encode("utf-8")

    def _republish_state(self, *, include_availability: bool) -> None:
        """Queue ``online``, discovery and every last-known state value, ahead of the backlog."""
        if include_availability:
            self._outbox.put_state(
                OutMessage(
                    self.topics.availability, ONLINE.encode(), self.settings.state_qos, True
                ),
                first=True,
            )
        if self.settings.discovery:
            for topic, payload in discovery.discovery_messages(self.settings):
                self._outbox.put_state(
                    OutMessage(topic, payload, self.settings.state_qos, True), first=True
                )
        with self._lock:
            known = list(self._last_state.values())
        for msg in known:
            self._outbox.put_state(
                OutMessage(msg.topic, msg.payload, msg.qos, msg.retain), first=True
            )

    def _make_client(self) -> paho.Client:
        client = build_paho_client(self.settings, self.settings.client_id)
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        # Our own jittered delay is installed before every wait (see _schedule_retry).
        self._schedule_retry(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        return client

    def _schedule_retry(self, client: paho.Client) -> None:
        delay_s = self._backoff.next_delay_s()
        # paho types the delays as int but computes with floats; this sets the next wait only.
        client.reconnect_delay_set(min_delay=delay_s, max_delay=delay_s)  # type: ignore[arg-type]

    def _set_error(self, text: str) -> None:
        with self._lock:
            self._last_error = text

    # paho callbacks (network thread). Each one must never raise.
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        try:
            if reason.is_failure:
                code = int(reason.value)
                with self._lock:
                    self._connect_failures += 1
                if code in AUTH_FAILURE_CODES:
                    with self._lock:
                        self._auth_failed = True
                        self._last_error = (
                            f"broker refused the connection: {reason} (0x{code:02X}); "
                            "check the user name and password file; not retrying"
                        )
                    log.error(
                        "MQTT: %s refused us: %s (0x%02X); check the user name and password "
                        "file; not retrying",
                        self.settings.url,
                        reason,
                        code,
                    )
                    client.disconnect()
                else:
                    self._set_error(f"broker refused the connection: {reason} (0x{code:02X})")
                    log.warning("MQTT: %s refused the connection: %s", self.settings.url, reason)
                    self._schedule_retry(client)
                return
            with self._lock:
                self._connects += 1
                self._last_error = None
                outage = self._outage_started
                self._outage_started = None
            self._backoff.reset()
            if self.settings.discovery:
                client.subscribe(discovery.status_topic(self.settings), qos=1)
            self._republish_state(include_availability=True)
            if outage is not None:
                c = self.counters
                log.warning(
                    "MQTT: reconnected after %.1f s; %d pose messages queued, %d dropped so far",
                    time.monotonic() - outage,
                    c.pose_pending,
                    c.pose_dropped,
                )
            else:
                log.info("MQTT: connected to %s", self.settings.url)
            self._outage_drops_logged = False
            with self._outbox.condition:
                self._connected.set()
                self._outbox.condition.notify_all()
        except Exception:
            log.exception("MQTT: error in on_connect")

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        try:
            was_connected = self._connected.is_set()
            with self._outbox.condition:
                self._connected.clear()
                self._generation += 1
                self._outbox.condition.notify_all()
            if self._stopping_disconnect or self._auth_failed:
                return
            if was_connected:
                with self._lock:
                    self._disconnects += 1
                    self._outage_started = time.monotonic()
                    self._last_error = f"connection lost: {reason}"
                log.warning(
                    "MQTT: connection to %s lost (%s); reconnecting", self.settings.url, reason
                )
            else:  # the TCP connection opened but no CONNACK came: closed or timed out
                with self._lock:
                    first = self._last_error is None or not self._last_error.startswith("handshake")
                    self._last_error = f"handshake with {self.settings.url} failed: {reason}"
                if first:
                    log.warning(
                        "MQTT: %s closed or stalled the connection before CONNACK (%s); retrying",
                        self.settings.url,
                        reason,
                    )
            self._schedule_retry(client)
        except Exception:
            log.exception("MQTT: error in on_disconnect")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        try:
            # paho calls this inside its `except OSError` block: the error is current.
            exc = sys.exc_info()[1]
            why = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
            with self._lock:
                self._connect_failures += 1
                first = self._last_error is None or not self._last_error.startswith(
                    "cannot connect"
                )
                self._last_error = f"cannot connect to {self.settings.url}: {why}"
            if first:
                log.warning("MQTT: cannot connect to %s: %s; retrying", self.settings.url, why)
            else:
                log.debug("MQTT: cannot connect to %s: %s", self.settings.url, why)
            self._schedule_retry(client)
        except Exception:
            log.exception("MQTT: error in on_connect_fail")

    def _on_message(self, client: paho.Client, userdata: Any, message: Any) -> None:
        try:
            payload = message.payload
            if (
                not isinstance(payload, bytes | bytearray)
                or len(payload) > MAX_STATUS_PAYLOAD_BYTES
            ):
                log.debug("MQTT: ignoring an oversized message on %s", message.topic)
                return
            text = bytes(payload).decode("utf-8", errors="replace").strip().lower()
            if message.topic == discovery.status_topic(self.settings) and text == ONLINE:
                now = time.monotonic()
                if now - self._announce_logged_s >= ANNOUNCE_LOG_INTERVAL_S:  # no log floods
                    self._announce_logged_s = now
                    log.info("MQTT: Home Assistant is online: re-announcing discovery and state")
                self._republish_state(include_availability=True)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("MQTT: ignoring %r on %s", payload[:32], message.topic)
        except Exception:
            log.exception("MQTT: error handling a message")

    # ------------------------------------------------------------------ sender thread
    def _send_loop(self) -> None:
        inflight = self._inflight
        cond = self._outbox.condition
        while True:
            with cond:
                while not self._stop_sender and not (
                    self._connected.is_set() and len(self._outbox)
                ):
                    cond.wait(timeout=0.5)
                    self._reconcile(inflight)
                if self._stop_sender:
                    break
                generation = self._generation
            try:
                self._send_batch(self._outbox.take(_SEND_BATCH), generation, inflight)
            except Exception:
                log.exception("MQTT: error in the sender thread")
                time.sleep(0.1)
            self._reconcile(inflight)

    def _send_batch(
        self, batch: list[OutMessage], generation: int, inflight: deque[tuple[Any, int, bool, int]]
    ) -> None:
        from paho.mqtt.client import MQTT_ERR_SUCCESS

        client = self._client
        for i, msg in enumerate(batch):
            try:
                payload = msg.render()
            except Exception:
                log.exception("MQTT: cannot encode a message for %s; dropped", msg.topic)
                with self._lock:
                    self._encode_errors += 1
                    if msg.is_pose:
                        self._pose_lost_in_flight += 1
                continue
            if client is None or not self._connected.is_set():
                self._outbox.requeue(batch[i:])
                return
            info = client.publish(
                msg.topic, payload, qos=msg.qos, retain=msg.retain, properties=self._properties(msg)
            )
            if info.rc != MQTT_ERR_SUCCESS:
                self._outbox.requeue(batch[i:])
                return
            with self._inflight_lock:
                inflight.append((info, generation, msg.is_pose, msg.qos))

    def _properties(self, msg: OutMessage) -> Any:
        if self.settings.protocol != "5" or not msg.is_pose:
            return None
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = CONTENT_TYPES[self.settings.encoding]
        props.UserProperty = [("sent_ms", str(int(time.time() * 1000)))]
        return props

    def _reconcile(self, inflight: deque[tuple[Any, int, bool, int]]) -> None:
        """Count messages paho has written (QoS 0) or had acknowledged (QoS >= 1); QoS 0
        messages of a connection that has since dropped were never written: lost."""
        with self._inflight_lock:
            self._reconcile_locked(inflight)

    def _reconcile_locked(self, inflight: deque[tuple[Any, int, bool, int]]) -> None:
        generation = self._generation
        sent = pose_sent = lost = 0
        keep: list[tuple[Any, int, bool, int]] = []
        while inflight:
            info, gen, is_pose, qos = inflight.popleft()
            if info.is_published():
                sent += 1
                pose_sent += is_pose
            elif gen != generation and qos == 0:
                lost += is_pose
            else:
                keep.append((info, gen, is_pose, qos))
                if gen == generation:
                    break
        inflight.extendleft(reversed(keep))
        if sent or lost:
            with self._lock:
                self._messages_sent += sent
                self._pose_sent += pose_sent
                self._pose_lost_in_flight += lost

    def _reconcile_all(self) -> None:
        self._generation += 1
        self._reconcile(self._inflight)

    def _wait_drained(self, deadline: float) -> None:
        while time.monotonic() < deadline and self._connected.is_set():
            with self._inflight_lock:
                pending = [i for i in self._inflight if not i[0].is_published()]
            if len(self._outbox) == 0 and not pending:
                return
            time.sleep(0.02)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: replace them with null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
