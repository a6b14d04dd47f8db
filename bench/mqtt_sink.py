"""Publishing during a bench run: the product's :class:`edge.publish.Publisher`, and a
probe that subscribes to the pose topic to time capture-to-delivery.

The probe runs in the *parent* bench process (idle while a configuration runs), so
its CPU and memory are not charged to the pipeline under test. Both processes use
``time.perf_counter_ns`` (CLOCK_MONOTONIC, shared by all processes on Linux), so
the child's capture start times and the probe's arrival times are comparable.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from edge.pose.types import PoseResult

NODE_ID = "edge-pose-bench"
POSE_TOPIC = f"edge-pose/{NODE_ID}/pose"


def _settings(url: str) -> Any:
    from edge.publish.settings import MqttSettings, parse_broker_url

    addr = parse_broker_url(url)
    return MqttSettings(
        host=addr.host,
        port=addr.port,
        tls=addr.tls,
        username=addr.username,
        node_id=NODE_ID,
        discovery=False,
        pose_queue_max=10_000,
    )


class MqttSink:
    """Publish every frame's result as the daemon does."""

    def __init__(self, url: str, source: str, connect_timeout_s: float = 10.0) -> None:
        from edge.publish.client import Publisher

        self._source = source
        self._publisher = Publisher(_settings(url))
        before = {t.ident for t in threading.enumerate()}
        self._publisher.start()
        if not self._publisher.wait_connected(connect_timeout_s):
            self._publisher.stop(clean=False)
            raise ConnectionError(f"no MQTT broker answered at {url} within {connect_timeout_s} s")
        #: The publisher's own threads (sender: encodes and sends; paho's network loop).
        self._threads = [t for t in threading.enumerate() if t.ident not in before]
        self._thread_cpu: dict[int, int] = {}

    def thread_cpu_ns(self) -> int:
        """CPU time used so far by the publisher's threads (they encode and send while
        the next frame is processed: the bench charges it to publishing, not the pipeline)."""
        total = 0
        for t in self._threads:
            ident = t.ident
            if ident is None:
                continue
            if t.is_alive():  # an ended thread keeps its last reading
                clock = time.pthread_getcpuclockid(ident)
                self._thread_cpu[ident] = time.clock_gettime_ns(clock)
            total += self._thread_cpu.get(ident, 0)
        return total

    def publish(self, result: PoseResult, frame_index: int) -> None:
        self._publisher.publish_result(result, frame_index, self._source)

    def close(self) -> dict[str, Any]:
        self._publisher.stop(clean=True)
        return dataclasses.asdict(self._publisher.counters)


class DeliveryProbe:
    """Subscribes to the bench node's pose topic; records (frame, arrival ns)."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt

        from edge.publish.settings import parse_broker_url

        addr = parse_broker_url(url)
        self.arrivals: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-pose-bench-probe")
        client.on_connect = lambda c, *_: c.subscribe(POSE_TOPIC, qos=0)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.connect(addr.host, addr.port)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(10.0):
            raise ConnectionError(f"could not subscribe to {POSE_TOPIC} at {url}")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.perf_counter_ns()
        try:
            frame = int(json.loads(message.payload)["frame"])
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self.arrivals.append((frame, now))

    def collect(self, quiet_s: float = 0.5, max_wait_s: float = 10.0) -> list[tuple[int, int]]:
        """Wait until nothing arrived for ``quiet_s``, then take (and clear) the arrivals."""
        deadline = time.monotonic() + max_wait_s
        seen = -1
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self.arrivals)
            if count == seen:
                break
            seen = count
            time.sleep(quiet_s)
        with self._lock:
            taken = list(self.arrivals)
            self.arrivals.clear()
        return taken

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
