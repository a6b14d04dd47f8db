"""Which model file serves which role, on a device (int8, committed) or for comparison (float).

Runtime side of the model story: resolving paths, reading ``models/manifest.toml``
and verifying the model files against it (:func:`verify_models`,
:func:`check_models`, used by the daemon at start-up and ``edge-pose models
verify``). Building the models is :mod:`edge.modelbuild`.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge import paths

ModelName = Literal["detector", "lite", "full", "heavy"]
Precision = Literal["int8", "float", "mixed"]
PRECISIONS: tuple[Precision, ...] = ("int8", "float", "mixed")

#: Models with a mixed-precision build (int8 with a few float layers; CPU only),
#: and its role in the manifest.
MIXED_ROLES: dict[ModelName, str] = {"lite": "lite-mixed"}

#: MediaPipe's model_complexity -> landmark model name.
COMPLEXITY_NAMES: dict[int, ModelName] = {0: "lite", 1: "full", 2: "heavy"}

_FLOAT_FILES: dict[str, str] = {
    "detector": "pose_detection.tflite",
    "lite": "pose_landmark_lite.tflite",
    "full": "pose_landmark_full.tflite",
    "heavy": "pose_landmark_heavy.tflite",
}


def float_file_name(name: ModelName) -> str:
    return _FLOAT_FILES[name]


def int8_file_name(name: ModelName) -> str:
    stem = _FLOAT_FILES[name].removesuffix(".tflite")
    return f"{stem}_int8.tflite"


def built_file_name(role: str) -> str:
    """File of a built model by manifest role (``lite``, ``lite-mixed``, ...)."""
    for name, mixed in MIXED_ROLES.items():
        if role == mixed:
            return float_file_name(name).removesuffix(".tflite") + "_mixed.tflite"
    if role not in _FLOAT_FILES:
        raise ValueError(f"no built model role {role!r}")
    return int8_file_name(role)  # type: ignore[arg-type]


def built_role(name: ModelName, precision: Precision) -> str:
    """Manifest role serving ``name`` at ``precision`` (the detector has no mixed build)."""
    if precision != "mixed" or name == "detector":
        return name
    if name not in MIXED_ROLES:
        raise ValueError(
            f"no mixed-precision {name} model: precision 'mixed' exists only for the "
            f"{', '.join(MIXED_ROLES)} model; use precision int8"
        )
    return MIXED_ROLES[name]


def runtime_roles(name: ModelName, precision: Precision) -> tuple[str, str]:
    """Manifest roles a pipeline of landmark model ``name`` at ``precision`` loads."""
    return built_role("detector", precision), built_role(name, precision)


def model_path(name: ModelName, precision: Precision, models_dir: Path | None = None) -> Path:
    """Path of a model: int8 (or mixed) from the built models, float from the float-source cache."""
    if precision in ("int8", "mixed"):
        return (models_dir or paths.models_dir()) / built_file_name(built_role(name, precision))
    if precision == "float":
        return paths.float_models_dir() / float_file_name(name)
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


# --- manifest and integrity -------------------------------------------------

MANIFEST_NAME = "manifest.toml"

#: The int8 models a device needs, by role (the daemon checks these at start-up).
REQUIRED_MODELS: tuple[ModelName, ...] = ("detector", "lite")


@dataclass(frozen=True, slots=True)
class SourceArtifact:
    """A float original inside a package on a registry (``[sources.<name>]``)."""

    name: str
    registry: str  # "npm" or "pypi"
    package: str
    version: str
    member: str
    file: str
    sha256: str


@dataclass(frozen=True, slots=True)
class BuiltModel:
    """An int8 model committed in ``models/`` (``[models.<role>]``)."""

    role: str
    file: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    sources: dict[str, SourceArtifact]
    models: dict[str, BuiltModel]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelProblem:
    """One missing or corrupt model file; ``message`` says what to do."""

    file: str
    path: Path
    expected_sha256: str
    actual_sha256: str | None  # None: the file is missing
    message: str


class ManifestError(ValueError):
    """manifest.toml is missing or malformed."""


class ModelIntegrityError(RuntimeError):
    """One or more model files are missing or do not match the manifest."""

    def __init__(self, problems: list[ModelProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.message for p in problems))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(models_dir: Path | None = None) -> Manifest:
    """Parse ``manifest.toml`` of ``models_dir`` (default: :func:`edge.paths.models_dir`)."""
    path = (models_dir or paths.models_dir()) / MANIFEST_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"{path} not found; restore it with `git checkout models/` or reinstall edge-pose"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: invalid TOML: {exc}") from exc
    try:
        sources = {
            name: SourceArtifact(
                name=name,
                registry=str(s["registry"]),
                package=str(s["package"]),
                version=str(s["version"]),
                member=str(s["member"]),
                file=str(s["file"]),
                sha256=str(s["sha256"]),
            )
            for name, s in raw.get("sources", {}).items()
        }
        models = {
            role: BuiltModel(
                role=role,
                file=str(m["file"]),
                sha256=str(m["sha256"]),
                size_bytes=int(m["size_bytes"]),
            )
            for role, m in raw.get("models", {}).items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{path}: missing or bad field {exc}") from exc
    return Manifest(sources, models, raw)


def _fix_hint() -> str:
    return (
        "fix: `git checkout models/` in a source checkout, reinstall edge-pose on a device, "
        "or rebuild with `edge-pose models build --calibration VIDEO...`"
    )


def verify_models(
    models_dir: Path | None = None, roles: tuple[str, ...] | None = None
) -> list[ModelProblem]:
    """Check every model in the manifest (or only ``roles``) against its sha256.

    Returns the problems (empty when all is well); a missing manifest is a problem too.
    """
    directory = models_dir or paths.models_dir()
    try:
        manifest = read_manifest(directory)
    except ManifestError as exc:
        path = directory / MANIFEST_NAME
        return [ModelProblem(MANIFEST_NAME, path, "", None, f"{exc}; {_fix_hint()}")]
    problems: list[ModelProblem] = []
    wanted = roles if roles is not None else tuple(manifest.models)
    for role in wanted:
        entry = manifest.models.get(role)
        if entry is None:
            path = directory / MANIFEST_NAME
            msg = (
                f"{path} lists no int8 model for {role!r}; build it with "
                f"`edge-pose models build --calibration VIDEO... --models {role}` "
                "or use a model that is listed (`edge-pose models list`)"
            )
            problems.append(ModelProblem(role, path, "", None, msg))
            continue
        path = directory / entry.file
        if not path.is_file():
            msg = f"model {path} is missing (expected sha256 {entry.sha256}); {_fix_hint()}"
            problems.append(ModelProblem(entry.file, path, entry.sha256, None, msg))
            continue
        actual = sha256_file(path)
        if actual != entry.sha256:
            msg = (
                f"model {path} is corrupt: expected sha256 {entry.sha256}, got {actual}; "
                f"{_fix_hint()}"
            )
            problems.append(ModelProblem(entry.file, path, entry.sha256, actual, msg))
    return problems


def check_models(models_dir: Path | None = None, roles: tuple[str, ...] = REQUIRED_MODELS) -> None:
    """Raise :class:`ModelIntegrityError` if a required model is missing or corrupt."""
    problems = verify_models(models_dir, roles)
    if problems:
        raise ModelIntegrityError(problems)
