"""The bounded outgoing queue between the frame loop and the MQTT client thread.

Two kinds of message share one ordering (a sequence number):

* **state** messages (retained topics: availability, presence, count, stats,
  discovery, mask) keep only the latest value per topic: while the broker is
  away a stream of updates costs one slot per topic;
* **pose** messages are kept up to ``pose_max``; beyond it the oldest is dropped
  and counted.

Producers call :meth:`Outbox.put_pose` / :meth:`Outbox.put_state`: O(1), never
blocking beyond a short lock. The client thread takes messages in order.
Payloads may be callables so that encoding runs on the client thread (and never
for messages that end up dropped).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Payload = bytes | Callable[[], bytes]
_FIRST_OFFSET = 1 << 62


@dataclass(slots=True)
class OutMessage:
    """One message waiting to go out."""

    topic: str
    payload: Payload
    qos: int
    retain: bool
    is_pose: bool = False
    seq: int = 0

    def render(self) -> bytes:
        """The payload bytes (runs the encoder for lazy payloads)."""
        return self.payload() if callable(self.payload) else self.payload


class Outbox:
    """Thread-safe bounded queue; see the module docstring."""

    def __init__(self, pose_max: int) -> None:
        if pose_max < 1:
            raise ValueError("pose_max must be >= 1")
        self.pose_max = pose_max
        self._cond = threading.Condition()
        self._poses: deque[OutMessage] = deque()
        self._state: dict[str, OutMessage] = {}
        self._seq = 0
        self.pose_enqueued = 0
        self.pose_dropped = 0
        self.state_coalesced = 0

    @property
    def condition(self) -> threading.Condition:
        """Notified on every put; the client thread waits on it."""
        return self._cond

    def put_pose(self, msg: OutMessage, *, notify: bool = True) -> int:
        """Queue a pose message; returns how many old ones were dropped to make room (0 or 1).

        ``notify=False`` skips waking the consumer (useless while it cannot send).
        """
        msg.is_pose = True
        dropped = 0
        with self._cond:
            self._seq += 1
            msg.seq = self._seq
            self._poses.append(msg)
            self.pose_enqueued += 1
            if len(self._poses) > self.pose_max:
                self._poses.popleft()
                self.pose_dropped += 1
                dropped = 1
            if notify:
                self._cond.notify()
        return dropped

    def put_state(self, msg: OutMessage, *, first: bool = False, notify: bool = True) -> None:
        """Queue a state message, replacing any not yet sent value of the same topic.

        ``first`` puts it ahead of everything queued without it (used on reconnect so
        that ``online`` and the current state precede the pose backlog).
        """
        msg.is_pose = False
        with self._cond:
            self._seq += 1
            msg.seq = self._seq - _FIRST_OFFSET if first else self._seq
            if msg.topic in self._state:
                self.state_coalesced += 1
            self._state[msg.topic] = msg
            if notify:
                self._cond.notify()

    def take(self, max_items: int) -> list[OutMessage]:
        """Remove and return up to ``max_items`` messages in the order they were queued."""
        out: list[OutMessage] = []
        with self._cond:
            while len(out) < max_items and (self._poses or self._state):
                oldest_state = min(self._state.values(), key=_seq_of, default=None)
                if self._poses and (oldest_state is None or self._poses[0].seq < oldest_state.seq):
                    out.append(self._poses.popleft())
                else:
                    assert oldest_state is not None
                    del self._state[oldest_state.topic]
                    out.append(oldest_state)
        return out

    def requeue(self, msgs: list[OutMessage]) -> None:
        """Put back messages that could not be handed to the client (keeps their order).

        A state message is dropped silently only when a newer value of its topic
        is already queued; pose messages beyond the bound are dropped and counted.
        """
        with self._cond:
            for msg in reversed(msgs):
                if msg.is_pose:
                    if len(self._poses) >= self.pose_max:
                        self.pose_dropped += 1
                        continue
                    self._poses.appendleft(msg)
                elif msg.topic not in self._state:
                    self._state[msg.topic] = msg
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._poses) + len(self._state)

    def pending_poses(self) -> int:
        with self._cond:
            return len(self._poses)


def _seq_of(msg: OutMessage) -> int:
    return msg.seq
