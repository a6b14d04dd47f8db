"""The project parts a benchmark run drives: frame source, pose pipeline, publisher.

Each is taken from the product code (``edge.capture``, ``edge.pose``,
``edge.publish``) so that what is benchmarked is what runs; this module only adapts
their call shapes to the bench loop and times nothing itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edge.pose.types import PoseResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TimedFrame:
    rgb: NDArray[np.uint8]
    timestamp_ns: int
    #: perf_counter_ns before the frame was asked for (start of capture/decode).
    capture_start_ns: int
    #: Wall time spent reading and decoding this frame (to RGB).
    capture_ns: int


class Pipeline(Protocol):
    def process(self, image_rgb: NDArray[np.uint8], timestamp_ns: int) -> PoseResult: ...

    @property
    def detector_runs(self) -> int: ...


class PublishSink(Protocol):
    def publish(self, result: PoseResult, frame_index: int) -> None: ...

    def close(self) -> dict[str, Any]: ...

    def thread_cpu_ns(self) -> int: ...


def iter_frames(source: str, max_frames: int) -> Iterator[TimedFrame]:
    """Decoded RGB frames from ``source`` (file, folder, camera), with capture timings."""
    from edge.capture import open_source

    yield from _iter_edge_source(open_source, source, max_frames)


def _iter_edge_source(open_source: Any, source: str, max_frames: int) -> Iterator[TimedFrame]:
    src = open_source(source)
    try:
        for _ in range(max_frames):
            t0 = time.perf_counter_ns()
            frame = src.read()
            t1 = time.perf_counter_ns()
            if frame is None:
                break
            rgb = getattr(frame, "rgb", None)
            if rgb is None:
                rgb = frame.image
            yield TimedFrame(rgb, int(frame.timestamp_ns), t0, t1 - t0)
    finally:
        close = getattr(src, "close", None)
        if close is not None:
            close()


def build_pipeline(model: str, precision: str, threads: int, delegate: str) -> Pipeline:
    """The daemon's pose pipeline (``edge.app.build_pipeline``: model check, then build)."""
    from edge.app import build_pipeline as app_build_pipeline
    from edge.config import EdgeConfig
    from edge.models import COMPLEXITY_NAMES

    complexity = {str(name): c for c, name in COMPLEXITY_NAMES.items()}[model]
    config = EdgeConfig.model_validate(
        {
            "models": {
                "complexity": complexity,
                "precision": precision,
                "threads": threads,
                "delegate": delegate,
            }
        }
    )
    pipeline: Pipeline = app_build_pipeline(config)
    return pipeline


class EncodeOnly:
    """``--broker none``: encode each result as the MQTT payload, send nothing."""

    def __init__(self, source: str) -> None:
        self._source = source
        self.bytes_encoded = 0

    def publish(self, result: PoseResult, frame_index: int) -> None:
        from edge.result_format import dumps, to_record

        self.bytes_encoded += len(dumps(to_record(result, frame_index, self._source)))

    def close(self) -> dict[str, Any]:
        return {"bytes_encoded": self.bytes_encoded}

    def thread_cpu_ns(self) -> int:
        return 0  # encodes in the calling thread, inside the publish window


def make_sink(broker: str | None, source: str) -> PublishSink:
    """A publisher to ``broker`` (``mqtt://host:port``) or the encode-only sink."""
    if not broker:
        return EncodeOnly(source)
    from bench.mqtt_sink import MqttSink

    return MqttSink(broker, source)
