"""Payload encoders: the pose record as JSON (default), msgpack or CBOR; masks as PNG."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from edge.pose.types import FloatArray, PoseResult
from edge.result_format import dumps, to_record

CONTENT_TYPES = {
    "json": "application/json",
    "msgpack": "application/msgpack",
    "cbor": "application/cbor",
}


def _as_float32(value: Any) -> Any:
    """Floats rounded to float32 (the record holds 5 significant digits: nothing is lost)."""
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, list):
        return [_as_float32(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_float32(v) for k, v in value.items()}
    return value


def encode_record(record: dict[str, Any], encoding: str) -> bytes:
    """One result record (see :mod:`edge.result_format`) in the chosen encoding.

    The compact encodings store floats as 32-bit (msgpack ``float 32``, CBOR's
    shortest exact form), about 40% smaller than the JSON text.
    """
    if encoding == "json":
        return dumps(record).encode("utf-8")
    if encoding == "msgpack":
        import msgpack

        packed: bytes = msgpack.packb(record, use_bin_type=True, use_single_float=True)
        return packed
    if encoding == "cbor":
        import cbor2

        encoded: bytes = cbor2.dumps(_as_float32(record), canonical=True)
        return encoded
    raise ValueError(f"encoding: {encoding!r}; allowed: json, msgpack, cbor")


def decode_record(payload: bytes, encoding: str) -> dict[str, Any]:
    """Inverse of :func:`encode_record` (used by ``edge-pose listen`` and tests)."""
    if encoding == "json":
        loaded: dict[str, Any] = json.loads(payload)
    elif encoding == "msgpack":
        import msgpack

        loaded = msgpack.unpackb(payload, raw=False)
    elif encoding == "cbor":
        import cbor2

        loaded = cbor2.loads(payload)
    else:
        raise ValueError(f"encoding: {encoding!r}; allowed: json, msgpack, cbor")
    if not isinstance(loaded, dict):
        raise ValueError("payload is not a record")
    return loaded


def encode_pose(result: PoseResult, frame_index: int, source: str, encoding: str) -> bytes:
    """The ``<base>/pose`` payload of one frame."""
    return encode_record(to_record(result, frame_index, source), encoding)


def downscale_mask(mask: FloatArray, max_side_px: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Mask in [0, 1] -> uint8 0..255, shrunk (area average) so its long side is <= max_side_px."""
    import cv2

    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    height, width = mask.shape
    scale = min(1.0, max_side_px / max(height, width))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    clipped = np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0)
    small = cv2.resize(clipped, (out_w, out_h), interpolation=cv2.INTER_AREA)
    result: np.ndarray[Any, np.dtype[np.uint8]] = np.round(small * 255.0).astype(np.uint8)
    return result


def encode_mask_png(mask: FloatArray, max_side_px: int) -> bytes:
    """The ``<base>/mask`` payload: a grayscale PNG, compressed."""
    import cv2

    ok, buf = cv2.imencode(
        ".png", downscale_mask(mask, max_side_px), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    if not ok:
        raise ValueError("PNG encoding of the mask failed")
    return bytes(buf.tobytes())
