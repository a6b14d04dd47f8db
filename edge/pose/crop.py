"""The model input: a rotated rectangle of the full frame warped straight into the tensor.

Mirrors MediaPipe's ``ImageToTensorCalculator`` with the OpenCV converter: the
rectangle's corners (as ``cv2.boxPoints`` gives them) map to the tensor's corners
(0, H), (0, 0), (W, 0), (W, H); sampling is bilinear on the uint8 frame; the
border is zero for the detector's letterbox and replicated for the landmark crop;
the uint8 result is then mapped to the tensor's value range.

One warp writes the pixels: float models get ``v * scale + offset`` into the
input tensor; int8 models whose input quantisation is ``v - 128`` get the warp
written into the tensor's own memory (viewed as uint8) and flipped in place
(``v ^ 0x80`` == ``v - 128`` as int8): no float round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.pose.roi import roi_corners_px
from edge.pose.types import Roi

Border = Literal["zero", "replicate"]
_BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}

#: Value ranges of the float models' inputs.
DETECTOR_RANGE = (-1.0, 1.0)
LANDMARK_RANGE = (0.0, 1.0)


def letterbox_roi(
    width_px: int, height_px: int, tensor_width: int, tensor_height: int
) -> tuple[Roi, tuple[float, float, float, float]]:
    """The whole frame, padded to the tensor's aspect ratio (``keep_aspect_ratio``,
    ``PadRoi``). Returns the padded ROI and the padding (left, top, right, bottom)
    as fractions of the tensor, kept fractional (not rounded to pixels)."""
    tensor_aspect = tensor_height / tensor_width
    roi_aspect = height_px / width_px
    vertical = horizontal = 0.0
    if tensor_aspect > roi_aspect:
        new_w = float(width_px)
        new_h = width_px * tensor_aspect
        vertical = (1.0 - roi_aspect / tensor_aspect) / 2.0
    else:
        new_w = height_px / tensor_aspect
        new_h = float(height_px)
        horizontal = (1.0 - tensor_aspect / roi_aspect) / 2.0
    roi = Roi(width_px / 2.0, height_px / 2.0, new_w, new_h, 0.0)
    return roi, (horizontal, vertical, horizontal, vertical)


def crop_matrix(roi: Roi, tensor_width: int, tensor_height: int) -> NDArray[np.float64]:
    """2x3 affine matrix frame px -> tensor px (the corner mapping MediaPipe uses)."""
    src = roi_corners_px(roi)
    dst = np.array(
        [[0.0, tensor_height], [0.0, 0.0], [tensor_width, 0.0]],
        dtype=np.float32,
    )
    matrix = np.asarray(cv2.getAffineTransform(src[:3], dst), dtype=np.float64)
    return matrix


def inverse_crop_matrix(roi: Roi, tensor_width: int, tensor_height: int) -> NDArray[np.float64]:
    """2x3 affine matrix tensor px -> frame px."""
    inv = np.asarray(
        cv2.invertAffineTransform(crop_matrix(roi, tensor_width, tensor_height)), np.float64
    )
    return inv


def crop_perspective(
    roi: Roi, tensor_width: int, tensor_height: int, corners: NDArray[np.float32] | None = None
) -> NDArray[np.float64]:
    """3x3 matrix frame px -> tensor px, from the 4 corners as MediaPipe builds it
    (``cv2.getPerspectiveTransform`` of the ``boxPoints`` corners; pass ``corners`` when
    they are already at hand)."""
    src = roi_corners_px(roi) if corners is None else corners
    dst = np.array(
        [[0.0, tensor_height], [0.0, 0.0], [tensor_width, 0.0], [tensor_width, tensor_height]],
        dtype=np.float32,
    )
    return np.asarray(cv2.getPerspectiveTransform(src, dst), dtype=np.float64)


class RgbaScratch:
    """Reusable buffers for :func:`warp_roi`'s four-channel path.

    OpenCV's bilinear warp is about 2.5x faster on 4-channel images than on
    3-channel ones (SIMD paths), so the ROI's bounding box is copied into a
    frame-sized RGBA buffer (only that box, every frame) and the warp runs on it.
    Each channel is sampled exactly as in the 3-channel warp: the result is
    bit-identical (tested). One instance per pipeline; not thread safe.
    """

    __slots__ = ("frame", "patches")

    def __init__(self) -> None:
        self.frame: NDArray[np.uint8] = np.empty((0, 0, 4), np.uint8)
        self.patches: dict[tuple[int, int], NDArray[np.uint8]] = {}

    def frame_buffer(self, height: int, width: int) -> NDArray[np.uint8]:
        if self.frame.shape[:2] != (height, width):
            self.frame = np.zeros((height, width, 4), np.uint8)
        return self.frame

    def patch_buffer(self, height: int, width: int) -> NDArray[np.uint8]:
        patch = self.patches.get((height, width))
        if patch is None:
            patch = self.patches[(height, width)] = np.empty((height, width, 4), np.uint8)
        return patch


#: Pixels around the ROI's bounding box that bilinear sampling may touch.
_BOX_MARGIN_PX = 3


def _roi_box(corners: NDArray[np.float32], width: int, height: int) -> tuple[int, int, int, int]:
    """Frame pixels (x0, y0, x1, y1) the warp of the ROI with these corners can read,
    clipped to the frame.

    Outside the frame the border rule reads the frame's edge pixels, which the
    clipped box then contains."""
    lo = np.floor(corners.min(axis=0)) - _BOX_MARGIN_PX
    hi = np.ceil(corners.max(axis=0)) + _BOX_MARGIN_PX
    x0 = int(min(max(lo[0], 0), width - 1))
    y0 = int(min(max(lo[1], 0), height - 1))
    x1 = int(min(max(hi[0], x0 + 1), width))
    y1 = int(min(max(hi[1], y0 + 1), height))
    return x0, y0, x1, y1


def warp_roi(
    image: NDArray[np.uint8],
    roi: Roi,
    tensor_width: int,
    tensor_height: int,
    border: Border,
    *,
    out: NDArray[np.uint8] | None = None,
    rgba: RgbaScratch | None = None,
) -> NDArray[np.uint8]:
    """Bilinear warp of ``roi`` from the full frame to a ``(H, W, C)`` uint8 patch.

    One ``cv2.warpPerspective`` with MediaPipe's corner-mapped matrix (for a
    rectangle it is affine). ``warpAffine`` with the same matrix computes source
    coordinates in a coarser fixed point and lands up to 1/32 px elsewhere, which
    costs about 0.001 torso of agreement with MediaPipe; the cost is the same.
    With ``rgba`` scratch buffers, a 3-channel frame is warped through its
    4-channel copy (same pixels, 2.5x less time; see :class:`RgbaScratch`).
    """
    corners = roi_corners_px(roi)
    matrix = crop_perspective(roi, tensor_width, tensor_height, corners)
    kwargs: dict[str, Any] = {
        "flags": cv2.INTER_LINEAR,
        "borderMode": _BORDERS[border],
        "borderValue": (0, 0, 0, 0),
    }
    size = (tensor_width, tensor_height)
    if rgba is not None and image.ndim == 3 and image.shape[2] == 3:
        height, width = int(image.shape[0]), int(image.shape[1])
        x0, y0, x1, y1 = _roi_box(corners, width, height)
        frame4 = rgba.frame_buffer(height, width)
        box = frame4[y0:y1, x0:x1]
        cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2RGBA, dst=box)
        patch4 = rgba.patch_buffer(tensor_height, tensor_width)
        cv2.warpPerspective(frame4, matrix, size, dst=patch4, **kwargs)
        if out is None:
            out = np.empty((tensor_height, tensor_width, 3), np.uint8)
        written = cv2.cvtColor(patch4, cv2.COLOR_RGBA2RGB, dst=out)
        return np.asarray(written, dtype=np.uint8)
    if out is not None:
        written = cv2.warpPerspective(image, matrix, size, dst=out, **kwargs)
        return np.asarray(written, dtype=np.uint8)
    return np.asarray(cv2.warpPerspective(image, matrix, size, **kwargs), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class InputEncoding:
    """How uint8 pixels become the values of one input tensor.

    ``kind``: ``float`` (``v * scale + offset``), ``xor128`` (int8 tensor with
    ``v - 128`` quantisation), ``identity`` (uint8 tensor taking raw pixels) or
    ``lut`` (any other quantisation: a 256-entry table).
    """

    kind: Literal["float", "xor128", "identity", "lut"]
    scale: float = 1.0
    offset: float = 0.0
    lut: NDArray[Any] | None = None


def make_encoding(
    dtype: np.dtype[Any],
    value_range: tuple[float, float],
    quant_scale: float = 0.0,
    quant_zero_point: int = 0,
) -> InputEncoding:
    """The encoding for a tensor of ``dtype`` (with its quantisation) fed pixels
    normalised to ``value_range`` (MediaPipe's ``output_tensor_float_range``)."""
    lo, hi = value_range
    scale = (hi - lo) / 255.0
    if dtype == np.dtype(np.float32):
        return InputEncoding("float", scale=scale, offset=lo)
    if dtype not in (np.dtype(np.int8), np.dtype(np.uint8)) or quant_scale <= 0.0:
        raise ValueError(f"unsupported input tensor type {dtype} (scale {quant_scale})")
    values = np.arange(256, dtype=np.float64) * scale + lo
    info = np.iinfo(dtype)
    ideal = values / quant_scale + quant_zero_point
    lut = np.clip(np.rint(ideal), info.min, info.max).astype(dtype)
    pixels = np.arange(256, dtype=np.float64)
    # Within half a step of ``v - 128`` (or ``v``) everywhere: the direct integer
    # path is as exact as rounding can be (a [-1, 1] input quantised with scale
    # 1/127.5 puts every pixel exactly half way between two steps).
    half_step = 0.5 + 1e-4
    if dtype == np.dtype(np.int8) and np.abs(ideal - (pixels - 128)).max() <= half_step:
        return InputEncoding("xor128")
    if dtype == np.dtype(np.uint8) and np.abs(ideal - pixels).max() <= half_step:
        return InputEncoding("identity")
    return InputEncoding("lut", lut=lut)


def crop_into_tensor(
    image: NDArray[np.uint8],
    roi: Roi,
    tensor: NDArray[Any],
    encoding: InputEncoding,
    border: Border,
    *,
    scratch: NDArray[np.uint8] | None = None,
    rgba: RgbaScratch | None = None,
) -> None:
    """Warp ``roi`` of ``image`` (H, W, 3 uint8 RGB) into ``tensor`` ((1,) h, w, 3), in place.

    ``scratch`` is an optional (h, w, 3) uint8 buffer reused between frames for the
    float and LUT encodings; ``rgba`` the 4-channel buffers of the faster warp.
    """
    plane = tensor.reshape(tuple(tensor.shape)[-3:])
    h, w = int(plane.shape[0]), int(plane.shape[1])
    if encoding.kind in ("xor128", "identity"):
        target = plane.view(np.uint8)
        written = warp_roi(image, roi, w, h, border, out=target, rgba=rgba)
        if written is not target and not np.shares_memory(written, target):
            np.copyto(target, written)
        if encoding.kind == "xor128":
            np.bitwise_xor(target, np.uint8(0x80), out=target)
        return
    patch = warp_roi(image, roi, w, h, border, out=scratch, rgba=rgba)
    if encoding.kind == "float":
        np.multiply(patch, np.float32(encoding.scale), out=plane, dtype=np.float32)
        if encoding.offset != 0.0:
            np.add(plane, np.float32(encoding.offset), out=plane)
        return
    assert encoding.lut is not None
    np.take(encoding.lut, patch, out=plane)


def pixels_from_tensor(tensor: NDArray[Any], encoding: InputEncoding) -> NDArray[np.uint8]:
    """Inverse of the encoding (for tests and calibration): tensor -> uint8 pixels."""
    plane = tensor.reshape(tensor.shape[-3:])
    if encoding.kind == "xor128":
        out: NDArray[np.uint8] = np.bitwise_xor(plane.view(np.uint8), np.uint8(0x80))
        return out
    if encoding.kind == "identity":
        return plane.astype(np.uint8)
    if encoding.kind == "float":
        values = (plane.astype(np.float64) - encoding.offset) / encoding.scale
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    assert encoding.lut is not None
    base = 0 if plane.dtype == np.uint8 else -128
    inverse = np.zeros(256, dtype=np.uint8)
    keys = encoding.lut.astype(np.int64) - base
    inverse[np.clip(keys, 0, 255)] = np.arange(256, dtype=np.uint8)
    idx = plane.astype(np.int64) - base
    restored: NDArray[np.uint8] = inverse[np.clip(idx, 0, 255)]
    return restored


def roi_contains_frame_px(roi: Roi, x_px: float, y_px: float) -> bool:
    """Whether a frame pixel lies inside the rotated rectangle."""
    dx = x_px - roi.center_x_px
    dy = y_px - roi.center_y_px
    c, s = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    u = c * dx + s * dy
    v = -s * dx + c * dy
    return abs(u) <= roi.width_px / 2 and abs(v) <= roi.height_px / 2
