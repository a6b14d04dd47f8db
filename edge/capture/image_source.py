"""Still images as a source: a single image file, or a folder of them in name order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.capture.convert import bgr_to_rgb, orient
from edge.capture.options import SourceOptions
from edge.capture.pacing import Pacer
from edge.capture.types import Frame, RgbImage, SourceError, SourceInfo

#: File name endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Frame rate image timestamps assume when the options give none.
DEFAULT_IMAGE_FPS = 30.0


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


class ImageSource:
    """Yields the images of a folder (kind "folder") or one image (kind "image").

    Each frame's `source` is the image's path. Timestamps are ``index / fps``
    (``fps`` from the options, else 30), or wall time with ``realtime``. An image
    that cannot be decoded raises `SourceError` naming it.
    """

    def __init__(
        self,
        uri: str,
        kind: str,
        options: SourceOptions,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if kind not in ("folder", "image"):
            raise ValueError(f"ImageSource cannot serve kind {kind!r}")
        self.uri = uri
        self.kind = kind
        self.options = options
        self._fps = options.fps or DEFAULT_IMAGE_FPS
        self._pacer = Pacer(clock_ns, sleep)
        self._paths: list[Path] | None = None
        self._index = 0
        self._size = (0, 0)

    def open(self) -> None:
        if self._paths is not None:
            return
        path = Path(self.uri)
        if self.kind == "image":
            if not path.is_file():
                raise SourceError(f"image file not found: {self.uri}")
            paths = [path]
        else:
            if not path.is_dir():
                raise SourceError(f"image folder not found: {self.uri}")
            paths = list_images(path)
            if not paths:
                raise SourceError(
                    f"no images in folder {self.uri} (looked for {', '.join(IMAGE_SUFFIXES)})"
                )
        self._paths = paths
        first = self._decode(paths[0])
        self._size = (first.shape[1], first.shape[0])

    def read(self) -> Frame | None:
        if self._paths is None:
            raise SourceError(f"{self.uri}: read() before open()")
        n = len(self._paths)
        if self._index >= n and not self.options.loop:
            return None
        path = self._paths[self._index % n]
        rgb = self._decode(path)
        media_ns = round(self._index * 1e9 / self._fps)
        ts = self._pacer.wait_until(media_ns) if self.options.realtime else media_ns
        frame = Frame(rgb=rgb, timestamp_ns=ts, index=self._index, source=str(path))
        self._index += 1
        return frame

    def close(self) -> None:
        self._paths = None

    def describe(self) -> SourceInfo:
        return SourceInfo(
            kind=self.kind,
            uri=self.uri,
            width=self._size[0],
            height=self._size[1],
            fps=self._fps,
            frame_count=len(self._paths) if self._paths is not None else None,
            backend="opencv imread",
        )

    def _decode(self, path: Path) -> RgbImage:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"cannot decode image file {path} (corrupt or not an image)")
        o = self.options
        return orient(bgr_to_rgb(bgr), o.rotation, o.hflip, o.vflip)
