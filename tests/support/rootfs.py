"""A minimal Debian root file system for the Ansible converge test, cached as a tarball.

``debootstrap --variant=minbase --include=python3 bookworm`` takes about a minute here;
the result is packed once into ``~/.cache/edge-pose/rootfs/`` and unpacked into a fresh
folder for each test session in a few seconds. The mirror is the one this machine's apt
uses, so the chroot reaches only what the host reaches.
"""

from __future__ import annotations

import fcntl
import logging
import platform
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from edge import paths

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "http://deb.debian.org/debian"
_DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def rootfs_cache_dir() -> Path:
    return paths.cache_dir() / "rootfs"


def host_mirror() -> str:
    """The Debian mirror of this machine's apt configuration (deb822 or one-line)."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        text = path.read_text(encoding="utf-8", errors="replace")
        for block in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", block, re.M):
                m = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if m and "security" not in m.group(1):
                    return m.group(1)
    one_line = Path("/etc/apt/sources.list")
    if one_line.is_file():
        for line in one_line.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    return DEFAULT_MIRROR


def tarball_path(suite: str = "bookworm") -> Path:
    arch = _DEB_ARCH.get(platform.machine(), platform.machine())
    return rootfs_cache_dir() / f"{suite}-minbase-python3-{arch}.tar.gz"


def ensure_tarball(suite: str = "bookworm") -> Path:
    """The cached root file system tarball, built with debootstrap on first use."""
    target = tarball_path(suite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, others wait and reuse it
        if target.is_file():
            return target
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is missing: apt-get install debootstrap")
        work = target.parent / f"build-{suite}"
        shutil.rmtree(work, ignore_errors=True)
        mirror = host_mirror()
        log.info("debootstrap %s from %s into %s", suite, mirror, work)
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", suite, str(work), mirror],
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            log_file = work / "debootstrap/debootstrap.log"
            detail = log_file.read_text(errors="replace")[-3000:] if log_file.is_file() else ""
            raise RuntimeError(
                f"debootstrap {suite} from {mirror} failed ({proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}{detail}"
            )
        # Smaller tarball: no downloaded .debs, no package lists (the role updates them).
        subprocess.run(["chroot", str(work), "apt-get", "clean"], check=True)
        for lists in (work / "var/lib/apt/lists").glob("*_*"):
            lists.unlink()
        partial = target.with_suffix(".partial")
        with tarfile.open(partial, "w:gz", compresslevel=3) as tar:
            tar.add(work, arcname=".")
        partial.replace(target)
        shutil.rmtree(work, ignore_errors=True)
        return target


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack the root file system into ``dest`` and give it this machine's DNS config."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(dest), "-xzf", str(tarball)], check=True)
    resolv = Path("/etc/resolv.conf")
    if resolv.is_file():
        target = dest / "etc/resolv.conf"
        target.unlink(missing_ok=True)
        shutil.copyfile(resolv, target)
    return dest
