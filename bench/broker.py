"""The broker a bench run publishes to: ``none``, a URL, or ``embedded``.

``embedded`` starts the product's embedded broker (:class:`edge.publish.embedded_broker.
EmbeddedBroker`, amqtt) on a free loopback port in the parent bench process, so its
CPU and memory are not charged to the configuration under test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerHandle:
    url: str | None
    kind: str


@contextlib.contextmanager
def open_broker(spec: str) -> Iterator[BrokerHandle]:
    """Yield where to publish for ``spec`` (``none``, ``embedded`` or ``mqtt://...``)."""
    if spec in ("", "none"):
        yield BrokerHandle(None, "none")
        return
    if spec != "embedded":
        from edge.publish.settings import parse_broker_url

        parse_broker_url(spec)  # a clear ValueError for a bad URL
        yield BrokerHandle(spec, "given")
        return
    from edge.publish.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker(host="127.0.0.1", port=0).start()
    try:
        yield BrokerHandle(broker.url, "embedded (amqtt, in the bench's parent process)")
    finally:
        broker.stop()
