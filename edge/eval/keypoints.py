"""Human-annotated keypoint sets (COCO-style and MPII JSON) on BlazePose's 33 landmarks.

Joints are mapped by name (nose, eyes, ears, shoulders, elbows, wrists, hips,
knees, ankles); joints BlazePose lacks (head top, neck, thorax, pelvis, ...)
are kept in :attr:`AnnotatedPerson.extra_px` and only used for the torso size.

Torso size of an annotation (:func:`annotation_torso_px`), first rule that applies:

1. both shoulders and both hips annotated: shoulder midpoint to hip midpoint;
2. a shoulder centre (shoulder midpoint, else ``neck``/``thorax``) and a hip
   centre (hip midpoint, else ``pelvis``): the distance between them;
3. the mean of the same-side shoulder-to-hip distances that are annotated;
4. otherwise none: the person is left out of PCK (and counted).

A keypoint counts as annotated when COCO's ``v > 0`` (labelled, visible or not)
or MPII's ``joints_vis > 0``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.eval.bodyparts import LANDMARK_INDEX, LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER
from edge.pose.types import NUM_LANDMARKS

#: MPII's 16 joints in file order.
MPII_JOINTS: tuple[str, ...] = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)
#: MPII's person box side is ``scale * 200`` pixels around ``center``.
MPII_SCALE_PX = 200.0

#: Dataset folder -> (annotation file, format).
DATASETS: dict[str, tuple[str, str]] = {
    "aic": ("test_aic.json", "coco"),
    "crowdpose": ("test_crowdpose.json", "coco"),
    "ochuman": ("test_ochuman.json", "coco"),
    "mpii": ("test_mpii.json", "mpii"),
}


@dataclass(frozen=True, slots=True)
class AnnotatedPerson:
    """One annotated person: keypoints in image pixels on BlazePose's 33 landmark slots."""

    dataset: str
    image_path: Path
    #: ``(33, 2)`` pixel x, y; NaN where the dataset has no such joint or it is not annotated.
    xy_px: NDArray[np.float64]
    #: ``(33,)`` True where annotated.
    labelled: NDArray[np.bool_]
    #: ``(x, y, w, h)`` person box in pixels.
    bbox_xywh_px: tuple[float, float, float, float]
    #: Annotated joints BlazePose lacks (``neck``, ``thorax``, ``pelvis``, ``head_top``, ...).
    extra_px: Mapping[str, tuple[float, float]]

    @property
    def torso_px(self) -> float:
        return annotation_torso_px(self.xy_px, self.labelled, self.extra_px)


def normalise_joint_name(name: str) -> str:
    """``"Right Shoulder"`` -> ``"right_shoulder"``."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def _point(
    xy: NDArray[np.float64], labelled: NDArray[np.bool_], i: int
) -> NDArray[np.float64] | None:
    return xy[i] if bool(labelled[i]) else None


def annotation_torso_px(
    xy_px: NDArray[np.float64],
    labelled: NDArray[np.bool_],
    extra_px: Mapping[str, tuple[float, float]],
) -> float:
    """Torso size of an annotation in pixels (rules in the module doc); NaN when undefined."""
    ls, rs = _point(xy_px, labelled, LEFT_SHOULDER), _point(xy_px, labelled, RIGHT_SHOULDER)
    lh, rh = _point(xy_px, labelled, LEFT_HIP), _point(xy_px, labelled, RIGHT_HIP)
    shoulder_c: NDArray[np.float64] | None = None
    hip_c: NDArray[np.float64] | None = None
    if ls is not None and rs is not None:
        shoulder_c = 0.5 * (ls + rs)
    else:
        for name in ("neck", "thorax"):
            if name in extra_px:
                shoulder_c = np.asarray(extra_px[name], dtype=np.float64)
                break
    if lh is not None and rh is not None:
        hip_c = 0.5 * (lh + rh)
    elif "pelvis" in extra_px:
        hip_c = np.asarray(extra_px["pelvis"], dtype=np.float64)
    if shoulder_c is not None and hip_c is not None:
        return float(np.linalg.norm(shoulder_c - hip_c))
    sides = [
        float(np.linalg.norm(s - h))
        for s, h in ((ls, lh), (rs, rh))
        if s is not None and h is not None
    ]
    return float(np.mean(sides)) if sides else float("nan")


def _person(  # noqa: PLR0917
    dataset: str,
    image_path: Path,
    names: Sequence[str],
    points: NDArray[np.float64],
    flags: NDArray[np.float64],
    bbox: tuple[float, float, float, float],
) -> AnnotatedPerson:
    xy = np.full((NUM_LANDMARKS, 2), np.nan, dtype=np.float64)
    labelled = np.zeros(NUM_LANDMARKS, dtype=bool)
    extra: dict[str, tuple[float, float]] = {}
    for name, p, flag in zip(names, points, flags, strict=True):
        if flag <= 0:
            continue
        key = normalise_joint_name(name)
        if key in LANDMARK_INDEX:
            xy[LANDMARK_INDEX[key]] = p
            labelled[LANDMARK_INDEX[key]] = True
        else:
            extra[key] = (float(p[0]), float(p[1]))
    return AnnotatedPerson(dataset, image_path, xy, labelled, bbox, extra)


def load_coco(json_path: Path, dataset: str) -> list[AnnotatedPerson]:
    """Persons of a COCO-style keypoint file (images next to it), in annotation order."""
    data: dict[str, Any] = json.loads(Path(json_path).read_text(encoding="utf-8"))
    names = data["categories"][0]["keypoints"]
    images = {img["id"]: img["file_name"] for img in data["images"]}
    persons = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 1) == 0:
            continue
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if kp.shape[0] != len(names):
            raise ValueError(f"{json_path}: annotation {ann.get('id')} has {kp.shape[0]} keypoints")
        x, y, w, h = (float(v) for v in ann["bbox"])
        image = Path(json_path).parent / images[ann["image_id"]]
        persons.append(_person(dataset, image, names, kp[:, :2], kp[:, 2], (x, y, w, h)))
    return persons


def load_mpii(json_path: Path, dataset: str = "mpii") -> list[AnnotatedPerson]:
    """Persons of an MPII JSON file (``joints``, ``joints_vis``, ``center``, ``scale``)."""
    data: list[dict[str, Any]] = json.loads(Path(json_path).read_text(encoding="utf-8"))
    persons = []
    for item in data:
        joints = np.asarray(item["joints"], dtype=np.float64)
        vis = np.asarray(item["joints_vis"], dtype=np.float64)
        vis = np.where((joints > 0).all(axis=1), vis, 0.0)
        cx, cy = (float(v) for v in item["center"])
        side = float(item["scale"]) * MPII_SCALE_PX
        bbox = (cx - side / 2, cy - side / 2, side, side)
        image = Path(json_path).parent / item["image"]
        persons.append(_person(dataset, image, MPII_JOINTS, joints, vis, bbox))
    return persons


def load_keypoint_sets(root: Path, datasets: Sequence[str] | None = None) -> list[AnnotatedPerson]:
    """All persons of the known sets under ``root`` (``keypoints/``), sets in sorted order."""
    persons: list[AnnotatedPerson] = []
    for name in sorted(datasets or DATASETS):
        file_name, fmt = DATASETS[name]
        path = Path(root) / name / file_name
        if not path.is_file():
            raise FileNotFoundError(f"keypoint set {name!r}: {path} missing")
        persons.extend(load_mpii(path, name) if fmt == "mpii" else load_coco(path, name))
    return persons
