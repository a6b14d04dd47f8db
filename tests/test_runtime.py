"""The interpreter factory: float vs int8 on a real frame, threads, Edge TPU errors and fallback."""

from __future__ import annotations

import ctypes
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.modelbuild.datasets import detector_tensor, landmark_tensor
from edge.models import float_file_name, int8_file_name
from edge.pose.types import Roi
from edge.runtime import Model, ModelLoadError, TensorInfo, load_model
from edge.runtime.model import EDGETPU_LIBRARY, dequantize, edgetpu_variant, quantize

# Tolerances measured on yoga-beach.jpg with the committed models (int8 vs float):
# detector top score |diff| 0.004, best-anchor box centre 0.7 px (224 input);
# lite landmarks 6.4 px mean over 33 on a centred 256 crop, world 3.9 cm. Bounds
# leave room for a rebuild of the models but fail on a broken quantisation.
DETECTOR_SCORE_TOL = 0.03
DETECTOR_CENTRE_TOL_PX = 3.0
LANDMARK_MEAN_TOL_PX = 15.0


def _sigmoid(x: NDArray[np.float32]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100, 100)))


@pytest.fixture(scope="module")
def frame(shared_data: Path) -> NDArray[np.uint8]:
    bgr = cv2.imread(str(shared_data / "images" / "yoga-beach.jpg"))
    assert bgr is not None
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _run(model: Model, x: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    model.set_input(x)
    model.invoke()
    return {info.name: model.output(i) for i, info in enumerate(model.outputs)}


def test_detector_int8_agrees_with_float(
    frame: NDArray[np.uint8], models_dir: Path, float_models_dir: Path
) -> None:
    x, _ = detector_tensor(frame)
    f = _run(load_model(float_models_dir / float_file_name("detector")), x)
    q_model = load_model(models_dir / int8_file_name("detector"))
    assert q_model.inputs[0].dtype == np.int8 and q_model.inputs[0].quantized
    q = _run(q_model, x)
    sf = _sigmoid(f["Identity_1"][0, :, 0])
    sq = _sigmoid(q["Identity_1"][0, :, 0])
    best = int(sf.argmax())
    assert sf[best] > 0.9  # a person is there
    assert abs(sf.max() - sq.max()) < DETECTOR_SCORE_TOL
    centre_err = np.linalg.norm(f["Identity"][0, best, :2] - q["Identity"][0, best, :2])
    assert centre_err < DETECTOR_CENTRE_TOL_PX
    # Far from the person the int8 model stays confident there is none.
    assert np.sum(sq > 0.5) <= 3 * max(1, np.sum(sf > 0.5))


def test_lite_int8_agrees_with_float(
    frame: NDArray[np.uint8], models_dir: Path, float_models_dir: Path
) -> None:
    h, w = frame.shape[:2]
    x = landmark_tensor(frame, Roi(w / 2, h / 2, min(w, h), min(w, h), 0.0))
    f = _run(load_model(float_models_dir / float_file_name("lite")), x)
    q = _run(load_model(models_dir / int8_file_name("lite")), x)
    lf = f["Identity"].reshape(39, 5)[:33, :2]
    lq = q["Identity"].reshape(39, 5)[:33, :2]
    assert np.linalg.norm(lf - lq, axis=1).mean() < LANDMARK_MEAN_TOL_PX
    assert float(f["Identity_1"][0, 0]) > 0.9 and float(q["Identity_1"][0, 0]) > 0.9
    # World landmarks: metres, hip-centred; int8 within 15 cm on average.
    wf = f["Identity_4"].reshape(39, 3)[:33]
    wq = q["Identity_4"].reshape(39, 3)[:33]
    assert np.linalg.norm(wf - wq, axis=1).mean() < 0.15


def test_int8_input_quantisation_uses_the_tensors_own_numbers(models_dir: Path) -> None:
    model = load_model(models_dir / int8_file_name("lite"))
    info = model.inputs[0]
    pixels = np.arange(256, dtype=np.float32) / 255.0
    q = quantize(pixels, info)
    assert np.array_equal(q.astype(np.int64), np.arange(256) - 128)
    assert np.allclose(dequantize(q, info), pixels, atol=1e-6)


def test_quantize_and_dequantize_widen_before_subtracting() -> None:
    info = TensorInfo(0, "t", (3,), np.dtype(np.int8), 0.5, -128)
    assert quantize(np.array([-100.0, 0.0, 36.0, 200.0], np.float32), info).tolist() == [
        -128,
        -128,
        -56,
        127,
    ]
    out = dequantize(np.array([127, -128, 0], np.int8), info)
    assert out.tolist() == [127.5, 0.0, 64.0]  # int8 - (-128) would overflow without widening


@pytest.mark.parametrize("name", ["detector", "lite"])
def test_num_threads_is_honoured(frame: NDArray[np.uint8], models_dir: Path, name: str) -> None:
    h, w = frame.shape[:2]
    x = (
        detector_tensor(frame)[0]
        if name == "detector"
        else landmark_tensor(frame, Roi(w / 2, h / 2, min(w, h), min(w, h), 0.0))
    )
    path = models_dir / int8_file_name(name)  # type: ignore[arg-type]
    one = load_model(path, num_threads=1)
    two = load_model(path, num_threads=2)
    a = _run(one, x)
    b = _run(two, x)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        load_model(path, num_threads=0)


def test_no_xnnpack_still_runs_int8(models_dir: Path) -> None:
    model = load_model(models_dir / int8_file_name("lite"), use_xnnpack=False)
    model.set_input(np.full((1, 256, 256, 3), 0.5, np.float32))
    model.invoke()
    assert model.output(1).shape == (1, 1)


def test_missing_model_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="edge-pose models verify"):
        load_model(tmp_path / "nope.tflite")


def test_corrupt_model_file_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_model(bad)


def _edgetpu_library_present() -> bool:
    try:
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError:
        return False
    return True


@pytest.fixture()
def tpu_model(tmp_path: Path, models_dir: Path) -> Path:
    """An int8 model plus a stand-in *_edgetpu.tflite next to it (the delegate step's input)."""
    if _edgetpu_library_present():
        pytest.skip("libedgetpu is installed here")
    path = tmp_path / int8_file_name("lite")
    shutil.copy(models_dir / int8_file_name("lite"), path)
    shutil.copy(path, edgetpu_variant(path))
    return path


def test_edgetpu_missing_library_is_a_clear_error(tpu_model: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        load_model(tpu_model, delegate="edgetpu")
    message = str(err.value)
    assert EDGETPU_LIBRARY in message
    assert "libedgetpu1-std" in message and 'fallback = "cpu"' in message


def test_edgetpu_fallback_runs_on_cpu_with_one_warning(
    tpu_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.runtime"):
        model = load_model(tpu_model, delegate="edgetpu", fallback="cpu")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Edge TPU unavailable" in warnings[0].getMessage()
    assert model.delegate == "cpu"
    assert model.path == tpu_model  # the CPU build, not the *_edgetpu variant
    model.set_input(np.full((1, 256, 256, 3), 0.5, np.float32))
    model.invoke()
    assert 0.0 <= float(model.output(1)[0, 0]) <= 1.0


def test_edgetpu_variant_naming() -> None:
    assert edgetpu_variant(Path("m/a_int8.tflite")) == Path("m/a_int8_edgetpu.tflite")
    assert edgetpu_variant(Path("m/a_edgetpu.tflite")) == Path("m/a_edgetpu.tflite")


def test_unknown_delegate_is_rejected(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="delegate must be"):
        load_model(models_dir / int8_file_name("lite"), delegate="gpu")  # type: ignore[arg-type]
