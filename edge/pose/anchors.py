"""SSD anchors of the BlazePose person detector (mirrors MediaPipe's ``SsdAnchorsCalculator``).

With ``fixed_anchor_size`` every anchor is 1 x 1 (relative to the input), so only
the centres matter. The pose detector's options (``pose_detection_cpu.pbtxt``)
give 2254 anchors: 28x28x2 (stride 8) + 14x14x2 (stride 16) + 7x7x6 (three
layers of stride 32 merged into one grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class SsdAnchorOptions:
    """``SsdAnchorsCalculatorOptions`` with the pose detector's values as defaults."""

    input_width_px: int = 224
    input_height_px: int = 224
    num_layers: int = 5
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False
    fixed_anchor_size: bool = True


POSE_DETECTOR_ANCHORS = SsdAnchorOptions()


def _calculate_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def generate_anchors(options: SsdAnchorOptions = POSE_DETECTOR_ANCHORS) -> NDArray[np.float32]:
    """Anchors as an ``(N, 4)`` float32 array of ``[x_center, y_center, width, height]``.

    Mirrors ``SsdAnchorsCalculator::GenerateAnchors``: consecutive layers with the same
    stride share one feature map; per cell the anchors of all those layers follow
    each other (row-major over y, then x, then anchor).
    """
    if len(options.strides) != options.num_layers:
        raise ValueError("strides must have num_layers entries")
    rows: list[tuple[float, float, float, float]] = []
    n = options.num_layers
    layer = 0
    while layer < n:
        heights: list[float] = []
        widths: list[float] = []
        last = layer
        while last < n and options.strides[last] == options.strides[layer]:
            scale = _calculate_scale(options.min_scale, options.max_scale, last, n)
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                pairs = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
            else:
                pairs = [(ratio, scale) for ratio in options.aspect_ratios]
                if options.interpolated_scale_aspect_ratio > 0.0:
                    next_scale = (
                        1.0
                        if last == n - 1
                        else _calculate_scale(options.min_scale, options.max_scale, last + 1, n)
                    )
                    pairs.append(
                        (options.interpolated_scale_aspect_ratio, math.sqrt(scale * next_scale))
                    )
            for ratio, s in pairs:
                root = math.sqrt(ratio)
                heights.append(s / root)
                widths.append(s * root)
            last += 1
        stride = options.strides[layer]
        fm_h = math.ceil(options.input_height_px / stride)
        fm_w = math.ceil(options.input_width_px / stride)
        for y in range(fm_h):
            for x in range(fm_w):
                cx = (x + options.anchor_offset_x) / fm_w
                cy = (y + options.anchor_offset_y) / fm_h
                for h, w in zip(heights, widths, strict=True):
                    if options.fixed_anchor_size:
                        rows.append((cx, cy, 1.0, 1.0))
                    else:
                        rows.append((cx, cy, w, h))
        layer = last
    return np.asarray(rows, dtype=np.float32)
