"""Pure pixel conversions shared by the adapters: colour order, YUV420, orientation."""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np

from edge.capture.types import RgbImage

_ROTATE = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


def bgr_to_rgb(bgr: np.ndarray) -> RgbImage:
    """OpenCV's BGR, BGRA or grey image as a new C-contiguous RGB array."""
    if bgr.ndim == 2:
        code = cv2.COLOR_GRAY2RGB
    elif bgr.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB
    else:
        code = cv2.COLOR_BGR2RGB
    return _u8(cv2.cvtColor(bgr, code))


def yuv420_to_rgb(yuv: np.ndarray, width: int, height: int) -> RgbImage:
    """Planar I420 (Y plane, then U, then V) as picamera2's ``make_array`` returns it.

    `yuv` has shape ``(height * 3 // 2, stride)``; rows may be padded beyond `width`
    (the chroma planes then use ``stride / 2``), so the conversion runs at the full
    stride and the padding is cut off afterwards.
    """
    rows, stride = yuv.shape[:2]
    if yuv.ndim != 2 or rows != height * 3 // 2 or stride < width:
        raise ValueError(f"YUV420 buffer {yuv.shape} does not hold a {width}x{height} image")
    rgb = _u8(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420))
    if stride != width:
        rgb = np.ascontiguousarray(rgb[:, :width])
    return rgb


def orient(rgb: RgbImage, rotation: int = 0, hflip: bool = False, vflip: bool = False) -> RgbImage:
    """Flip, then rotate clockwise by `rotation` degrees; returns `rgb` itself when idle."""
    out: Any = rgb
    if hflip and vflip:
        out = cv2.flip(out, -1)
    elif hflip:
        out = cv2.flip(out, 1)
    elif vflip:
        out = cv2.flip(out, 0)
    if rotation:
        out = cv2.rotate(out, _ROTATE[rotation])
    return _u8(out)


def _u8(image: Any) -> RgbImage:
    return cast(RgbImage, image)
