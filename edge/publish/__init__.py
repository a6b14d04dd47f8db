"""MQTT publishing: topics, Home Assistant discovery, a non-blocking publisher.

Public API (stable)::

    from edge.publish import MqttSettings, Publisher, parse_broker_url, validate_node_id

paho is imported only when a :class:`Publisher` starts, so importing this package
works without a broker or network.
"""

from __future__ import annotations

from edge.publish.client import Publisher, PublisherCounters
from edge.publish.settings import (
    BrokerAddress,
    MqttSettings,
    parse_broker_url,
    read_secret,
    validate_base_topic,
    validate_node_id,
)
from edge.publish.topics import Topics

__all__ = [
    "BrokerAddress",
    "MqttSettings",
    "Publisher",
    "PublisherCounters",
    "Topics",
    "parse_broker_url",
    "read_secret",
    "validate_base_topic",
    "validate_node_id",
]
