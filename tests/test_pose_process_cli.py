"""``edge-pose process`` end to end: real footage in, schema-valid JSON Lines out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jsonschema
import pytest

from edge import cli
from edge.result_format import schema


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_process_video_writes_valid_records_annotation_and_summary(
    shared_data: Path, tmp_path: Path
) -> None:
    clip = shared_data / "video" / "pose_squats.mp4"  # 65 frames, 5 fps, 720 x 1280
    out = tmp_path / "poses.jsonl"
    annotated = tmp_path / "squats.annotated.mp4"
    summary = tmp_path / "summary.json"
    status = cli.main(
        [
            "process",
            str(clip),
            "--output",
            str(out),
            "--annotate",
            str(annotated),
            "--summary",
            str(summary),
            "--no-progress",
        ]
    )
    assert status == 0
    records = _records(out)
    assert len(records) == 65
    validator = jsonschema.Draft202012Validator(schema())
    for rec in records:
        validator.validate(rec)
    assert [r["frame"] for r in records] == list(range(65))
    assert records[1]["ts_ms"] == pytest.approx(200.0)  # 5 fps media time
    assert {r["source"] for r in records} == {str(clip)}
    assert (records[0]["width"], records[0]["height"]) == (720, 1280)
    with_pose = sum(1 for r in records if r["poses"])
    assert with_pose >= 63
    pose = next(r for r in records if r["poses"])["poses"][0]  # type: ignore[index]
    assert len(pose["landmarks"]) == 33 and len(pose["landmarks"][0]) == 5
    assert len(pose["world"]) == 33 and len(pose["world"][0]) == 3

    result = json.loads(summary.read_text())
    assert set(result) == {"frames", "frames_with_pose", "detector_runs", "mean_ms_per_frame"}
    assert result["frames"] == 65 and result["frames_with_pose"] == with_pose
    assert 1 <= result["detector_runs"] <= 6
    assert result["mean_ms_per_frame"] > 0

    cap = cv2.VideoCapture(str(annotated))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 65
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (1280, 720, 3)


def test_process_images_and_folders_name_the_image(shared_data: Path, tmp_path: Path) -> None:
    images = shared_data / "images"
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("three-persons.jpg", "empty-living-room.jpg"):
        (folder / name).symlink_to(images / name)
    out = tmp_path / "poses.jsonl"
    annotated = tmp_path / "annotated"
    status = cli.main(
        [
            "process",
            str(images / "yoga-beach.jpg"),
            str(folder),
            "--static",
            "--num-poses",
            "3",
            "--output",
            str(out),
            "--annotate",
            str(annotated),
            "--no-progress",
        ]
    )
    assert status == 0
    records = _records(out)
    validator = jsonschema.Draft202012Validator(schema())
    for rec in records:
        validator.validate(rec)
    by_source = {r["source"]: r for r in records}
    assert list(by_source) == ["yoga-beach.jpg", "empty-living-room.jpg", "three-persons.jpg"]
    assert [len(r["poses"]) for r in records] == [1, 0, 3]  # type: ignore[arg-type]
    assert sorted(p.name for p in annotated.iterdir()) == [
        "empty-living-room.jpg",
        "three-persons.jpg",
        "yoga-beach.jpg",
    ]


def test_process_rejects_what_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    assert cli.main(["process", str(notes), "--output", str(tmp_path / "x.jsonl")]) == 2
    assert "not a video or image file" in capsys.readouterr().err
    assert cli.main(["process", str(tmp_path / "missing.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    status = cli.main(
        ["process", str(broken), "--output", str(tmp_path / "y.jsonl"), "--no-progress"]
    )
    assert status == 1
    assert "cannot decode image" in capsys.readouterr().err
