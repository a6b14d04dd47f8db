"""The topic layout under one node's base topic."""

from __future__ import annotations

from dataclasses import dataclass

#: Payloads of ``<base>/availability``.
ONLINE = "online"
OFFLINE = "offline"
STOPPED = "stopped"
#: Payloads of ``<base>/presence``.
PRESENCE_ON = "ON"
PRESENCE_OFF = "OFF"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic one node publishes to."""

    base: str

    @property
    def pose(self) -> str:
        """One message per frame with people (and one empty when the last leaves); not retained."""
        return f"{self.base}/pose"

    @property
    def presence(self) -> str:
        """``ON``/``OFF``, retained, on change."""
        return f"{self.base}/presence"

    @property
    def count(self) -> str:
        """Number of people, retained, on change."""
        return f"{self.base}/count"

    @property
    def availability(self) -> str:
        """``online`` (retained, on connect), ``offline`` (will), ``stopped`` (clean exit)."""
        return f"{self.base}/availability"

    @property
    def stats(self) -> str:
        """JSON health record, retained, every stats interval."""
        return f"{self.base}/stats"

    @property
    def mask(self) -> str:
        """Downscaled PNG of the segmentation mask (when enabled)."""
        return f"{self.base}/mask"

    def state_topics(self) -> tuple[str, ...]:
        """The retained topics a node leaves on the broker."""
        return (self.presence, self.count, self.availability, self.stats, self.mask)
