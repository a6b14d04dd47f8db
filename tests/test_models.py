"""The committed int8 models: fully int8, hashes match the manifest, corruption is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge import models
from edge.modelbuild import datasets, edgetpu, flatbuf, frames, prepare, quantize, ranges
from edge.modelbuild.evaluate import detector_accuracy, landmark_accuracy
from edge.modelbuild.sources import FetchError, fetch_all, fetch_source
from edge.pose.crop import LANDMARK_RANGE, make_encoding

ROLES = ("detector", "lite")


def _edge_pose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def manifest(models_dir: Path) -> models.Manifest:
    return models.read_manifest(models_dir)


def test_every_committed_model_is_fully_int8(models_dir: Path, manifest: models.Manifest) -> None:
    """Every op reads and writes int8 activations, and every I/O tensor is int8.

    No exceptions: LOGISTIC, RESIZE_BILINEAR, DEPTH_TO_SPACE and the requantising
    QUANTIZE ops before the detector's CONCATENATIONs all run int8 -> int8. Only
    constant operands (int32 biases, shapes, paddings) are not int8.
    """
    assert set(ROLES) <= set(manifest.models)
    for role, entry in manifest.models.items():
        if role in models.MIXED_ROLES.values():
            continue  # test_mixed_model_keeps_only_its_island_in_float
        summary = flatbuf.summarize(flatbuf.read(models_dir / entry.file))
        assert len(summary.ops) > 50, role
        not_int8 = [
            (op.name, op.activation_types)
            for op in summary.ops
            if set(op.activation_types) != {"INT8"}
        ]
        assert not_int8 == [], role
        io_types = [t.type_name for t in summary.inputs + summary.outputs]
        assert io_types == ["INT8"] * len(io_types), role
        assert "DEQUANTIZE" not in summary.op_counts(), role
        assert "DENSIFY" not in summary.op_counts(), role


def test_mixed_model_keeps_only_its_island_in_float(
    models_dir: Path, manifest: models.Manifest
) -> None:
    """lite-mixed: int8 I/O (the pipeline feeds it like the int8 model), int8 heads, and
    float only in the recipe's ops, with one DEQUANTIZE/QUANTIZE pair per island edge."""
    from edge.modelbuild.recipes import LITE_FLOAT_OPS, RECIPES

    entry = manifest.models["lite-mixed"]
    assert entry.file == models.built_file_name("lite-mixed") == "pose_landmark_lite_mixed.tflite"
    assert manifest.raw["models"]["lite-mixed"]["recipe"]["float_ops"] == list(LITE_FLOAT_OPS)
    data = (models_dir / entry.file).read_bytes()
    summary = quantize.check_int8(data, len(RECIPES["lite-mixed"].float_ops))
    with pytest.raises(quantize.NotInt8Error):
        quantize.check_int8(data)
    with pytest.raises(quantize.NotInt8Error, match="float ops"):
        quantize.check_int8(data, len(LITE_FLOAT_OPS) - 1)
    lite = flatbuf.summarize(flatbuf.read(models_dir / manifest.models["lite"].file))
    assert [(t.shape, t.scale, t.zero_point) for t in summary.inputs] == [
        (t.shape, t.scale, t.zero_point) for t in lite.inputs
    ]
    assert [t.shape for t in summary.outputs] == [t.shape for t in lite.outputs]
    counts = summary.op_counts()
    # Two islands (stem + 64x64 stage; regression branch): in at their first ops, out where
    # int8 ops read them.
    assert counts["DEQUANTIZE"] <= 4 and counts["QUANTIZE"] <= 4, counts
    heads = [op for op in summary.ops if op.name == "LOGISTIC"]
    assert heads and set(heads[0].activation_types) == {"INT8"}


def test_model_paths_by_precision(tmp_path: Path) -> None:
    assert models.model_path("lite", "mixed", tmp_path).name == "pose_landmark_lite_mixed.tflite"
    assert models.model_path("detector", "mixed", tmp_path).name == "pose_detection_int8.tflite"
    assert models.built_role("lite", "mixed") == "lite-mixed"
    assert models.built_role("lite", "int8") == "lite"
    with pytest.raises(ValueError, match="no mixed-precision full model"):
        models.model_path("full", "mixed", tmp_path)


def test_landmark_input_is_uint8_minus_128(models_dir: Path, manifest: models.Manifest) -> None:
    """The lite model's int8 input is exactly the uint8 pixel - 128 (no float round trip)."""
    summary = flatbuf.summarize(flatbuf.read(models_dir / manifest.models["lite"].file))
    (inp,) = summary.inputs
    enc = make_encoding(np.dtype(np.int8), LANDMARK_RANGE, inp.scale, inp.zero_point)
    assert enc.kind == "xor128"


def test_expected_ops(models_dir: Path, manifest: models.Manifest) -> None:
    det = flatbuf.summarize(flatbuf.read(models_dir / manifest.models["detector"].file))
    assert det.op_counts()["DEPTH_TO_SPACE"] == 3
    assert det.op_counts()["CONV_2D"] == 45
    lite = flatbuf.summarize(flatbuf.read(models_dir / manifest.models["lite"].file))
    assert lite.op_counts()["LOGISTIC"] == 1
    assert [t.shape for t in lite.outputs] == [
        (1, 195),
        (1, 1),
        (1, 256, 256, 1),
        (1, 64, 64, 39),
        (1, 117),
    ]


def test_manifest_hashes_match_files(models_dir: Path, manifest: models.Manifest) -> None:
    assert set(ROLES) <= set(manifest.models)
    for entry in manifest.models.values():
        path = models_dir / entry.file
        assert models.sha256_file(path) == entry.sha256
        assert path.stat().st_size == entry.size_bytes
    assert models.verify_models(models_dir) == []
    models.check_models(models_dir)


def test_manifest_records_sources_and_recipe(manifest: models.Manifest) -> None:
    assert manifest.sources["pose_detection"].registry == "pypi"
    assert manifest.sources["pose_detection"].version == "0.10.14"
    assert manifest.sources["pose_landmark_lite"].package == "@mediapipe/pose"
    raw = manifest.raw["models"]["lite"]
    assert raw["recipe"]["recipe"] == "static_wi8_ai8"
    assert raw["recipe"]["io"] == "int8"
    assert len(raw["calibration"]["digest_sha256"]) == 64
    assert raw["source_sha256"] == manifest.sources["pose_landmark_lite"].sha256
    assert "ai-edge-quantizer" in raw["tools"]


def test_float_cache_matches_manifest_sources(
    float_models_dir: Path, manifest: models.Manifest
) -> None:
    for src in manifest.sources.values():
        assert models.sha256_file(float_models_dir / src.file) == src.sha256


def test_fetch_is_idempotent(float_models_dir: Path, models_dir: Path) -> None:
    """Files already present with the right hash are not fetched again (no network)."""
    results = fetch_all(models_dir, ["pose_landmark_lite", "pose_detection"], float_models_dir)
    assert [r.action for r in results] == ["present", "present"]


def test_fetch_checksum_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    archive_dir = tmp_path / "sources"
    archive_dir.mkdir()
    member = tmp_path / "pose_landmark_lite.tflite"
    member.write_bytes(b"not the model")
    with tarfile.open(archive_dir / "mediapipe-pose-0.5.1675469404.tgz", "w:gz") as tf:
        tf.add(member, arcname="package/pose_landmark_lite.tflite")
    src = models.SourceArtifact(
        "pose_landmark_lite",
        "npm",
        "@mediapipe/pose",
        "0.5.1675469404",
        "package/pose_landmark_lite.tflite",
        "pose_landmark_lite.tflite",
        "f" * 64,
    )
    with pytest.raises(FetchError, match=r"expected sha256 f{64}, got [0-9a-f]{64}"):
        fetch_source(src, tmp_path / "float", archive_dir)
    assert not (tmp_path / "float" / "pose_landmark_lite.tflite").exists()


@pytest.fixture()
def models_copy(tmp_path: Path, models_dir: Path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(models_dir, dst)
    return dst


def test_verify_detects_a_flipped_byte(models_copy: Path, manifest: models.Manifest) -> None:
    entry = manifest.models["lite"]
    path = models_copy / entry.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = models.verify_models(models_copy)
    assert [p.file for p in problems] == [entry.file]
    (problem,) = problems
    assert problem.expected_sha256 == entry.sha256
    assert problem.actual_sha256 == models.sha256_file(path) != entry.sha256
    assert "corrupt" in problem.message and "git checkout models/" in problem.message
    with pytest.raises(models.ModelIntegrityError) as err:
        models.check_models(models_copy, ("detector", "lite"))
    assert entry.file in str(err.value)
    models.check_models(models_copy, ("detector",))  # the intact one still passes

    proc = _edge_pose("models", "verify", "--dir", str(models_copy))
    assert proc.returncode == 1
    assert entry.file in proc.stderr
    assert f"expected sha256 {entry.sha256}" in proc.stderr
    assert "edge-pose models build" in proc.stderr


def test_startup_check_of_the_mixed_model(models_copy: Path, manifest: models.Manifest) -> None:
    """precision = "mixed": the daemon checks the detector and lite-mixed, by name."""
    from edge.app import verify_models
    from edge.config import ModelsConfig
    from edge.daemon import StartupError

    config = ModelsConfig(precision="mixed", dir=str(models_copy))
    verify_models(config)  # intact
    entry = manifest.models["lite-mixed"]
    path = models_copy / entry.file
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(StartupError) as err:
        verify_models(config)
    assert entry.file in str(err.value) and entry.sha256 in str(err.value)
    verify_models(ModelsConfig(precision="int8", dir=str(models_copy)))  # int8 does not need it


def test_verify_detects_a_missing_model(models_copy: Path, manifest: models.Manifest) -> None:
    entry = manifest.models["detector"]
    (models_copy / entry.file).unlink()
    (problem,) = models.verify_models(models_copy)
    assert problem.actual_sha256 is None
    assert "missing" in problem.message and entry.sha256 in problem.message


def test_a_model_not_built_names_the_build_command(models_dir: Path) -> None:
    (problem,) = models.verify_models(models_dir, ("heavy",))
    assert "--models heavy" in problem.message


def test_verify_without_manifest(tmp_path: Path) -> None:
    (problem,) = models.verify_models(tmp_path)
    assert "manifest.toml" in problem.message
    assert models.verify_models(tmp_path, ("lite",))[0].actual_sha256 is None


def test_verify_cli_ok(models_dir: Path) -> None:
    proc = _edge_pose("models", "verify", "--dir", str(models_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok ") == len(models.read_manifest(models_dir).models)


def test_check_edgetpu_names_the_blockers(models_dir: Path, manifest: models.Manifest) -> None:
    det = edgetpu.check_model(models_dir / manifest.models["detector"].file)
    assert {i.op for i in det.issues} == {"DEPTH_TO_SPACE", "RESIZE_BILINEAR"}
    assert sum(i.op == "DEPTH_TO_SPACE" for i in det.issues) == 3
    lite = edgetpu.check_model(models_dir / manifest.models["lite"].file)
    assert {(i.op, i.version) for i in lite.issues} == {("RESIZE_BILINEAR", 3)}
    assert len(lite.issues) == 5
    proc = _edge_pose("models", "check-edgetpu", str(models_dir / manifest.models["lite"].file))
    assert proc.returncode == 1
    assert "half_pixel_centers" in proc.stdout


def test_check_edgetpu_flags_float_ops(float_models_dir: Path) -> None:
    report = edgetpu.check_model(float_models_dir / "pose_landmark_lite.tflite")
    reasons = {i.reason for i in report.issues}
    assert any("FLOAT32" in r for r in reasons)
    assert any(i.op == "DEQUANTIZE" for i in report.issues)


def test_compile_edgetpu_says_when_the_compiler_is_missing() -> None:
    if shutil.which("edgetpu_compiler"):
        pytest.skip("edgetpu_compiler is installed here")
    proc = _edge_pose("models", "compile-edgetpu")
    assert proc.returncode == 69
    assert "edgetpu_compiler is not installed" in proc.stderr


def test_models_help_teaches() -> None:
    proc = _edge_pose("models", "build", "--help")
    assert proc.returncode == 0
    assert "--calibration" in proc.stdout and "examples:" in proc.stdout


def test_models_evaluate_is_an_action() -> None:
    proc = _edge_pose("models", "evaluate", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--landmark" in proc.stdout and "PCK@0.2" in proc.stdout


def test_lite_heatmap_keeps_its_positive_peaks(models_dir: Path, manifest: models.Manifest) -> None:
    """The heatmap output (refinement weighs by sigmoid of its peaks) is not clipped at 0.

    A percentile range ended at 0 (zero point 127): every positive logit came out 0.
    """
    summary = flatbuf.summarize(flatbuf.read(models_dir / manifest.models["lite"].file))
    heatmap = next(t for t in summary.outputs if t.shape[-1] == 39 and len(t.shape) == 4)
    high = (127 - heatmap.zero_point) * heatmap.scale
    low = (-128 - heatmap.zero_point) * heatmap.scale
    assert high >= 4.5, (low, high)
    assert low <= -12.0, (low, high)
    assert heatmap.scale <= 0.15


def test_prepare_is_bit_exact(float_models_dir: Path) -> None:
    """fp16 weights baked to fp32 constants: same outputs, no DEQUANTIZE, a signature."""
    original = (float_models_dir / "pose_landmark_lite.tflite").read_bytes()
    prepared = prepare.prepare_float_model(original)
    prepare.check_bit_exact(original, prepared)
    model = flatbuf.read(prepared)
    assert "DEQUANTIZE" not in flatbuf.summarize(model).op_counts()
    assert model.signatureDefs[0].signatureKey == b"serving_default"
    # Negate the weights of the largest conv (the landmark head): the check must notice.
    largest = max(model.buffers, key=lambda buf: 0 if buf.data is None else len(buf.data))
    weights = -np.frombuffer(np.asarray(largest.data, np.uint8).tobytes(), np.float32)
    largest.data = np.frombuffer(weights.tobytes(), np.uint8)
    with pytest.raises(AssertionError, match="differs"):
        prepare.check_bit_exact(original, flatbuf.to_bytes(model))


def test_check_int8_rejects_float_model(float_models_dir: Path) -> None:
    with pytest.raises(quantize.NotInt8Error, match="not fully int8"):
        quantize.check_int8((float_models_dir / "pose_detection.tflite").read_bytes())


def test_range_policy_overrides_and_percentile() -> None:
    rng = np.random.default_rng(0)
    stats = {"a": ranges._Stats(), "b": ranges._Stats()}
    for st in stats.values():
        for _ in range(10):
            v = rng.normal(size=1000).astype(np.float32)
            v[0] = 50.0  # one outlier per sample
            st.minimum = min(st.minimum, float(v.min()))
            st.maximum = max(st.maximum, float(v.max()))
            st.sample_min.append(float(v.min()))
            st.sample_max.append(float(v.max()))
            st.values.append(v)
    pol = ranges.RangePolicy("percentile", 99.0, (("^b$", -12.0, 12.0),))
    out = ranges.choose_ranges(stats, pol)
    assert out["b"] == (-12.0, 12.0)
    assert 1.5 < out["a"][1] < 4.0  # the outlier is clipped
    assert ranges.choose_ranges(stats, ranges.RangePolicy("minmax"))["a"][1] == 50.0
    lo, hi = ranges.choose_ranges(stats, ranges.RangePolicy("mse"))["a"]
    assert lo < 0 < hi


def test_detector_accuracy_metrics() -> None:
    boxes = np.zeros((2, 2254, 12), np.float32)
    logits = np.full((2, 2254, 1), -10.0, np.float32)
    logits[:, 7, 0] = 2.0
    q_boxes = boxes.copy()
    q_boxes[:, 7, :2] = [3.0, 4.0]
    q_logits = logits.copy()
    q_logits[1, 7, 0] = 0.0
    acc = detector_accuracy(boxes, logits, q_boxes, q_logits)
    assert acc.box_center_px_mean == pytest.approx(5.0)
    assert acc.top_score_abs_diff_max == pytest.approx(1 / (1 + np.exp(-2.0)) - 0.5, abs=1e-6)
    assert acc.detection_agreement == 0.5  # sigmoid(0) = 0.5 is not a detection


def _against_zero_landmarks(
    q: np.ndarray, flag: list[float], q_flag: list[float], is_person: list[bool], **kw: Any
) -> Any:
    """landmark_accuracy of int8 landmarks ``q`` (N, 39, 5) against a float model at 0."""
    n = len(q)
    world = np.zeros((n, 117), np.float32)
    return landmark_accuracy(
        float_landmarks=np.zeros((n, 195), np.float32),
        float_world=world,
        float_flag=np.array(flag, np.float32).reshape(n, 1),
        int8_landmarks=q.reshape(n, 195),
        int8_world=world,
        int8_flag=np.array(q_flag, np.float32).reshape(n, 1),
        is_person=np.array(is_person),
        **kw,
    )


def test_landmark_accuracy_metrics() -> None:
    q = np.zeros((3, 39, 5), np.float32)
    q[:, 0, 0] = 33.0  # nose off by 33 px -> face group mean 3 px, overall 1 px
    acc = _against_zero_landmarks(q, [0.9, 0.9, 0.1], [0.9, 0.4, 0.1], [True, True, False])
    assert acc.mean_px == pytest.approx(1.0)
    assert acc.by_part_px["face"] == pytest.approx(3.0)
    assert acc.flag_agreement_person == 0.5
    assert acc.flag_agreement_non_person == 1.0


def test_landmark_accuracy_keeps_detector_false_positives_apart() -> None:
    q = np.zeros((4, 39, 5), np.float32)
    q[3, :33, 0] = 100.0  # a table leg: its "landmarks" are arbitrary
    flag, q_flag = [0.9, 0.1, 0.7, 0.7], [0.9, 0.1, 0.3, 0.8]
    false_positive = np.array([False, False, True, True])
    acc = _against_zero_landmarks(
        q, flag, q_flag, [True, False, False, False], is_false_positive=false_positive
    )
    assert (acc.person_crops, acc.non_person_crops, acc.false_positive_crops) == (1, 1, 2)
    assert acc.mean_px == 0.0  # errors on person crops only
    assert acc.flag_agreement_person == acc.flag_agreement_non_person == 1.0
    assert (acc.false_positive_float_says_person, acc.false_positive_int8_says_person) == (2, 1)
    with pytest.raises(ValueError, match="both"):
        _against_zero_landmarks(
            q, flag, q_flag, [True, False, False, True], is_false_positive=false_positive
        )


@pytest.mark.slow
def test_held_out_detections_in_empty_frames_are_false_positives(
    shared_data: Path, float_models_dir: Path, manifest: models.Manifest
) -> None:
    """The float detector finds a "person" in the base of a table while the room is empty
    (one-by-one-enter-leave): held out, such crops are not person crops."""
    from edge.modelbuild.build import float_detector_fn

    clip = shared_data / "video" / "one-by-one-enter-leave.mp4"
    read = frames.read_frames([clip], frames_per_video=100)
    by_index = {f.index: f.person_present for f in read}
    assert by_index[0] is False and by_index[121] is True
    detector = float_detector_fn(
        (float_models_dir / manifest.sources["pose_detection"].file).read_bytes()
    )
    held = datasets.build_samples(read, detector, held_out=True)
    empty_held = [f for f in read if f.held_out and f.person_present is False]
    assert len(held.false_positive_crops) == 4  # frames 20, 45, 222 and 474
    assert len(empty_held) >= len(held.false_positive_crops)
    assert len(held.person_crops) == 13
    crops, is_person, is_false_positive = held.evaluation_inputs()
    assert len(crops) == 13 + len(held.non_person_crops) + 4
    assert is_false_positive.sum() == 4 and not np.any(is_person & is_false_positive)
    calib = datasets.build_samples(read, detector, held_out=False)
    assert calib.false_positive_crops == []  # calibration keeps them with the persons


def test_calibration_inputs(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(frames.CalibrationInputError, match="no such file"):
        frames.expand_inputs([tmp_path / "nope.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(frames.CalibrationInputError, match="no images or videos"):
        frames.expand_inputs([tmp_path / "empty"])
    images = shared_data / "images"
    files = frames.expand_inputs([images])
    assert files == sorted(files) and all(f.suffix in {".jpg", ".jpeg", ".png"} for f in files)
    read = frames.read_frames(files, frames_per_video=5)
    assert len(read) == len(files)
    assert sum(f.held_out for f in read) == len(files) // frames.HOLDOUT_EVERY
    assert frames.inputs_digest(files) == frames.inputs_digest(list(files))


def test_jittered_roi_stays_near_the_tracked_roi() -> None:
    from edge.pose.types import Roi

    roi = Roi(100.0, 200.0, 80.0, 80.0, 0.3)
    rng = np.random.default_rng(0)
    out = [datasets.jittered_roi(roi, rng) for _ in range(200)]
    shifts = np.array([[r.center_x_px - 100.0, r.center_y_px - 200.0] for r in out])
    assert np.abs(shifts).max() <= datasets.JITTER_SHIFT * 80.0 + 1e-9
    assert np.abs(shifts).max() > 0.5 * datasets.JITTER_SHIFT * 80.0  # it does move
    scales = np.array([r.width_px / 80.0 for r in out])
    assert datasets.JITTER_SCALE[0] <= scales.min() and scales.max() <= datasets.JITTER_SCALE[1]
    turns = np.array([r.rotation_rad - 0.3 for r in out])
    assert np.abs(turns).max() <= datasets.JITTER_ROTATION_RAD + 1e-9


def test_calibration_options_never_change_the_held_out_split() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    split = [frames.Frame("x", i, rgb, held_out=i % 2 == 1) for i in range(4)]

    def no_person(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((2254, 12), np.float32), np.full((2254, 1), -100.0, np.float32)

    base = datasets.build_samples(split, no_person, held_out=True)
    more = datasets.build_samples(
        split, no_person, held_out=True, person_jitter=2, non_person_per_frame=3
    )
    assert len(more.non_person_crops) == len(base.non_person_crops) == 2
    for a, b in zip(base.non_person_crops, more.non_person_crops, strict=True):
        np.testing.assert_array_equal(a, b)
    calib = datasets.build_samples(split, no_person, held_out=False, non_person_per_frame=3)
    assert len(calib.non_person_crops) == 2 * 2 * 3  # 2 frames, mirrored, 3 each
