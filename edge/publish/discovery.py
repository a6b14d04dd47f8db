"""Home Assistant MQTT discovery: one device per node with its entities.

Config topics: ``<prefix>/<component>/<node>/<object>/config`` (retained). Every
entity carries ``unique_id``, ``device`` and ``availability`` tied to
``<base>/availability``, whose ``stopped`` also counts as unavailable.
"""

from __future__ import annotations

import json
from typing import Any

from edge import __version__
from edge.publish.settings import MqttSettings, ha_object_id
from edge.publish.topics import ONLINE, PRESENCE_OFF, PRESENCE_ON, Topics

MANUFACTURER = "edge-pose"
MODEL = "BlazePose GHUM lite int8 (edge-pose)"
#: Stats keys the diagnostic sensors read (the daemon's stats dict must provide them).
STATS_FPS_KEY = "fps"
STATS_INFERENCE_KEY = "inference_ms_p50"
#: The daemon's stats also carry ``latency_ms.p50_ms`` (per-frame processing time).
INFERENCE_TEMPLATE = (
    f"{{{{ value_json.{STATS_INFERENCE_KEY} if value_json.{STATS_INFERENCE_KEY} is defined "
    "else value_json.latency_ms.p50_ms }}"
)

#: object_id -> (component, keys specific to the entity)
_ENTITIES: dict[str, tuple[str, dict[str, Any]]] = {
    "presence": (
        "binary_sensor",
        {
            "name": "Presence",
            "device_class": "occupancy",
            "payload_on": PRESENCE_ON,
            "payload_off": PRESENCE_OFF,
        },
    ),
    "count": (
        "sensor",
        {
            "name": "People",
            "unit_of_measurement": "people",
            "state_class": "measurement",
            "icon": "mdi:account-group",
        },
    ),
    "fps": (
        "sensor",
        {
            "name": "Frame rate",
            "unit_of_measurement": "fps",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "value_template": f"{{{{ value_json.{STATS_FPS_KEY} }}}}",
        },
    ),
    "inference_ms": (
        "sensor",
        {
            "name": "Inference latency",
            "unit_of_measurement": "ms",
            "device_class": "duration",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "value_template": INFERENCE_TEMPLATE,
        },
    ),
}

#: Keys Home Assistant needs for each component we announce.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "binary_sensor": ("name", "unique_id", "state_topic", "device", "availability", "payload_on"),
    "sensor": ("name", "unique_id", "state_topic", "device", "availability"),
}


def config_topic(settings: MqttSettings, component: str, object_id: str) -> str:
    node = ha_object_id(settings.node_id)
    return f"{settings.discovery_prefix}/{component}/{node}/{object_id}/config"


def config_topics(settings: MqttSettings) -> list[str]:
    """Every discovery config topic of a node (what `mqtt remove-node` clears)."""
    return [config_topic(settings, comp, obj) for obj, (comp, _) in _ENTITIES.items()]


def status_topic(settings: MqttSettings) -> str:
    """Where Home Assistant announces ``online`` after it (re)starts."""
    return f"{settings.discovery_prefix}/status"


def device_info(settings: MqttSettings) -> dict[str, Any]:
    info: dict[str, Any] = {
        "identifiers": [f"edge_pose_{ha_object_id(settings.node_id)}"],
        "name": settings.device_name,
        "model": MODEL,
        "manufacturer": MANUFACTURER,
        "sw_version": __version__,
    }
    if settings.configuration_url:
        info["configuration_url"] = settings.configuration_url
    return info


def discovery_messages(settings: MqttSettings) -> list[tuple[str, bytes]]:
    """(topic, JSON payload) of every entity's config message."""
    topics = Topics(settings.base_topic)
    node = ha_object_id(settings.node_id)
    state_topics = {
        "presence": topics.presence,
        "count": topics.count,
        "fps": topics.stats,
        "inference_ms": topics.stats,
    }
    availability = [
        {
            "topic": topics.availability,
            # `stopped` (clean exit) must read as unavailable too.
            "value_template": f"{{{{ 'online' if value == '{ONLINE}' else 'offline' }}}}",
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    device = device_info(settings)
    out: list[tuple[str, bytes]] = []
    for object_id, (component, extra) in _ENTITIES.items():
        config: dict[str, Any] = {
            "unique_id": f"edge_pose_{node}_{object_id}",
            "state_topic": state_topics[object_id],
            "availability": availability,
            "device": device,
            "origin": {"name": "edge-pose", "sw_version": __version__},
            **extra,
        }
        payload = json.dumps(config, separators=(",", ":"), sort_keys=True).encode("utf-8")
        out.append((config_topic(settings, component, object_id), payload))
    return out
