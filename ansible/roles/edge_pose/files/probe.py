"""Host facts the edge_pose role needs, as one JSON line (runs with the host's python3).

Kept compatible with old interpreters so that an unsupported host gets the role's
clear message instead of a traceback.
"""

import glob
import json
import os
import platform
import shutil
import sys


def nearest_existing(path):
    while not os.path.exists(path):
        path = os.path.dirname(path) or "/"
    return path


def main():
    prefix = sys.argv[1] if len(sys.argv) > 1 else "/opt/edge-pose"
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    free = shutil.disk_usage(nearest_existing(prefix)).free
    print(
        json.dumps(
            {
                "python": "%d.%d.%d" % sys.version_info[:3],
                "python_tag": "cp%d%d" % sys.version_info[:2],
                "executable": sys.executable,
                "glibc": glibc.split()[-1] if glibc else "",
                "machine": platform.machine(),
                "free_mb": free // (1024 * 1024),
                "rpi_os": os.path.exists("/etc/rpi-issue"),
                "media_devices": sorted(glob.glob("/dev/media*")),
                "video_devices": sorted(glob.glob("/dev/video*")),
                "systemd_booted": os.path.isdir("/run/systemd/system"),
            }
        )
    )


main()
