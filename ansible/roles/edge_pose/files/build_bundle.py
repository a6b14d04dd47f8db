"""Build edge-pose once on the controller and bundle it for each host platform.

Run by the edge_pose role with the controller's Python (delegate_to: localhost,
run_once). Prints one JSON object: the version, the wheel's name, one bundle (a
tarball) per platform and whether anything changed.

The wheel is built from a clean copy of the source tree with a fixed
SOURCE_DATE_EPOCH, so the same source gives the same bytes and re-runs change
nothing. With --wheelhouse each bundle also holds every dependency for that
platform (pip download --platform ...), so hosts install offline.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

#: 1980-01-01: the earliest time a zip archive can store.
EPOCH = "315532800"
SOURCE_ITEMS = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md", "LICENSE")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"build_bundle: failed ({proc.returncode}): {' '.join(cmd)}")
    return proc.stdout


def source_digest(src: Path) -> str:
    """sha256 over the names and contents of everything the wheel is built from."""
    h = hashlib.sha256()
    files = [src / n for n in SOURCE_ITEMS if (src / n).is_file()]
    files += [p for p in (src / "edge").rglob("*") if p.is_file() and not _ignored(p)]
    for path in sorted(files):
        h.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _ignored(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc" or ".egg-info" in str(path)


def cached_wheel(src: Path, out: Path, tmp: Path) -> Path:
    """The wheel for this source: reused when the source is unchanged, else built."""
    digest = source_digest(src)
    cache = out / "dist"
    record = cache / "source.sha256"
    wheels = sorted(cache.glob("edge_pose-*.whl"))
    if record.is_file() and record.read_text().strip() == digest and len(wheels) == 1:
        return wheels[0]
    wheel = build_wheel(src, tmp)
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    shutil.copy2(wheel, cache / wheel.name)
    record.write_text(digest + "\n")
    return cache / wheel.name


def build_wheel(src: Path, tmp: Path) -> Path:
    tree = tmp / "src"
    tree.mkdir()
    for name in SOURCE_ITEMS:
        if (src / name).is_file():
            shutil.copy2(src / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(src / "edge", tree / "edge", ignore=ignore)
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    out = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(tree), "-w", str(out)], env)
    wheels = sorted(out.glob("edge_pose-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build_bundle: expected one edge_pose wheel, got {wheels}")
    return wheels[0]


def platform_tags(machine: str, glibc: str) -> list[str]:
    major, minor = (int(x) for x in glibc.split(".")[:2])
    if major != 2:
        raise SystemExit(f"build_bundle: unexpected glibc {glibc}")
    first = 5 if machine == "x86_64" else 17
    tags = [f"manylinux_2_{m}_{machine}" for m in range(first, minor + 1)]
    tags.append(f"manylinux2014_{machine}")
    if machine == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    return tags


def requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines (what decides its dependencies)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode("utf-8")
    return sorted(line for line in text.splitlines() if line.startswith("Requires-Dist:"))


def download(wheel: Path, key: str, dest: Path, refresh: bool) -> list[Path]:
    """Every wheel ``wheel`` needs on platform ``key``, kept in ``dest`` between runs.

    The resolution is remembered with the requirements it was made for, so re-runs
    reuse it without asking the index; ``refresh`` resolves again (newer releases).
    """
    record = dest / "resolution.json"
    wanted = requirements(wheel)
    if record.is_file() and not refresh:
        saved = json.loads(record.read_text(encoding="utf-8"))
        files = [dest / n for n in saved["files"]]
        if saved["requires"] == wanted and all(f.is_file() for f in files):
            return [*files, wheel]
    machine, pytag, glibc = key.split("-")
    version = f"{pytag[2]}.{pytag[3:]}"
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(dest)]
    for tag in platform_tags(machine, glibc.removeprefix("glibc")):
        cmd += ["--platform", tag]
    cmd += ["--python-version", version, "--implementation", "cp", "--abi", pytag, str(wheel)]
    out = _run(cmd)
    # pip names each file of the resolution: "Saved X" or "File was already downloaded X".
    names = set(re.findall(r"^(?:Saved|File was already downloaded) (\S+\.whl)$", out, re.M))
    files = sorted(dest / Path(n).name for n in names if Path(n).name != wheel.name)
    (dest / wheel.name).unlink(missing_ok=True)
    saved = {"requires": wanted, "files": [f.name for f in files]}
    record.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    return [*files, wheel]


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def write_bundle(files: list[Path], target: Path) -> bool:
    """Write a reproducible tarball; True when ``target`` changed."""
    tmp = target.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(files, key=lambda p: p.name):
            tar.add(path, arcname=path.name, filter=_reset)
    if target.is_file() and filecmp.cmp(tmp, target, shallow=False):
        tmp.unlink()
        return False
    tmp.replace(target)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, required=True, help="the edge-pose source tree")
    parser.add_argument("--out", type=Path, required=True, help="where bundles are kept")
    parser.add_argument("--platform", action="append", default=[], help="MACHINE-cpXY-glibcA.B")
    parser.add_argument("--wheelhouse", action="store_true", help="bundle the dependencies too")
    parser.add_argument("--refresh", action="store_true", help="resolve the dependencies again")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    changed = False
    bundles: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="edge-pose-build-") as name:
        tmp = Path(name)
        wheel = cached_wheel(args.src.resolve(), args.out, tmp)
        for key in sorted(set(args.platform)):
            files = [wheel]
            if args.wheelhouse:
                files = download(wheel, key, args.out / f"wheelhouse-{key}", args.refresh)
            target = args.out / f"edge-pose-{key}{'' if args.wheelhouse else '-nodeps'}.tar"
            changed |= write_bundle(files, target)
            bundles[key] = str(target)
        version = wheel.name.split("-")[1]
        print(json.dumps({"changed": changed, "version": version, "wheel": wheel.name,
                          "bundles": bundles}))


if __name__ == "__main__":
    main()
