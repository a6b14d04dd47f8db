"""Which cameras this machine can see: libcamera cameras (via picamera2) and V4L2 devices.

Used by ``edge-pose sources``. V4L2 capabilities are read with the
``VIDIOC_QUERYCAP`` ioctl; nodes that cannot capture (metadata nodes of USB
cameras, memory-to-memory codecs) and the Raspberry Pi's internal ISP, codec and
CSI-receiver nodes (which libcamera drives) are left out unless asked for.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from edge.capture.picamera2_source import list_libcamera_cameras

_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_CAP_VIDEO_M2M_MPLANE = 0x00004000
_CAP_VIDEO_M2M = 0x00008000
_CAP_DEVICE_CAPS = 0x80000000

#: Drivers/names of Raspberry Pi internals that are not cameras to open with V4L2.
_PI_INTERNALS = (
    "bcm2835-codec",
    "bcm2835-isp",
    "rpi-hevc",
    "rpivid",
    "pispbe",
    "rp1-cfe",
    "unicam",
)


@dataclass(frozen=True, slots=True)
class CameraEntry:
    """A camera as `edge-pose sources` lists it."""

    #: "libcamera" or "v4l2".
    kind: str
    #: What to write as ``source =`` in the config.
    uri: str
    name: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Discovery:
    cameras: tuple[CameraEntry, ...]
    #: Why a backend found nothing (picamera2 missing, no device nodes...).
    notes: tuple[str, ...]


def discover(
    dev_dir: Path = Path("/dev"),
    sysfs_dir: Path = Path("/sys/class/video4linux"),
    include_all: bool = False,
) -> Discovery:
    """Every camera found, libcamera first."""
    cams, notes = _libcamera()
    v4l2, v4l2_notes = v4l2_devices(dev_dir, sysfs_dir, include_all)
    return Discovery(cameras=tuple(cams + v4l2), notes=tuple(notes + v4l2_notes))


def _libcamera() -> tuple[list[CameraEntry], list[str]]:
    try:
        infos = list_libcamera_cameras()
    except ImportError:
        return [], [
            "libcamera: picamera2 is not importable (on Raspberry Pi OS: "
            "`sudo apt install python3-picamera2`, venv created with --system-site-packages)"
        ]
    except Exception as e:
        return [], [f"libcamera: listing cameras failed: {e}"]
    if not infos:
        return [], ["libcamera: picamera2 is present but detects no camera"]
    out = []
    for num, info in enumerate(infos):
        uri = "picamera2" if num == 0 else f"picamera2:{num}"
        detail = ", ".join(f"{k} {info[k]}" for k in ("Location", "Rotation", "Id") if k in info)
        out.append(CameraEntry("libcamera", uri, str(info.get("Model", "camera")), detail))
    return out, []


def v4l2_devices(
    dev_dir: Path, sysfs_dir: Path, include_all: bool = False
) -> tuple[list[CameraEntry], list[str]]:
    """V4L2 capture devices under `dev_dir`, named from `sysfs_dir`/videoN/name."""
    nodes = sorted(
        (p for p in dev_dir.glob("video*") if re.fullmatch(r"video\d+", p.name)),
        key=lambda p: int(p.name[5:]),
    )
    if not nodes:
        return [], [f"V4L2: no {dev_dir}/video* devices"]
    out: list[CameraEntry] = []
    hidden = 0
    for node in nodes:
        name_file = sysfs_dir / node.name / "name"
        name = name_file.read_text().strip() if name_file.is_file() else node.name
        caps = _query_caps(node)
        if caps is None:
            capture, driver, detail = True, "", "capabilities not readable"
        else:
            driver, flags = caps
            capture = bool(flags & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE)) and not (
                flags & (_CAP_VIDEO_M2M | _CAP_VIDEO_M2M_MPLANE)
            )
            detail = f"driver {driver}"
        internal = any(name.startswith(p) or driver.startswith(p) for p in _PI_INTERNALS)
        if not include_all and (not capture or internal):
            hidden += 1
            continue
        if not capture:
            detail += ", not a capture device"
        out.append(CameraEntry("v4l2", str(node), name, detail))
    notes = []
    if hidden:
        notes.append(
            f"V4L2: {hidden} node(s) that are not cameras (metadata, codec, ISP) hidden; "
            "--all shows them"
        )
    return out, notes


def _query_caps(node: Path) -> tuple[str, int] | None:
    """(driver, capabilities) of a V4L2 node, or None when it cannot be queried."""
    try:
        fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = bytearray(104)
        fcntl.ioctl(fd, _VIDIOC_QUERYCAP, buf)
    except OSError:
        return None
    finally:
        os.close(fd)
    driver = bytes(buf[:16]).split(b"\0", 1)[0].decode("ascii", "replace")
    capabilities, device_caps = struct.unpack_from("<II", buf, 84)
    flags = device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities
    return driver, flags
