"""Unit tests pinning each pure numeric stage of the pose pipeline on known inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edge.pose.anchors import generate_anchors
from edge.pose.crop import (
    RgbaScratch,
    crop_into_tensor,
    letterbox_roi,
    make_encoding,
    pixels_from_tensor,
    warp_roi,
)
from edge.pose.detection import Detections, decode_detections, remove_letterbox, weighted_nms
from edge.pose.filters import (
    LANDMARKS_ONE_EURO,
    LandmarksSmoother,
    LowPassFilter,
    OneEuroFilter,
)
from edge.pose.landmarks import (
    decode_landmarks,
    project_landmarks,
    project_world_landmarks,
    refine_from_heatmap,
    unproject_landmarks,
)
from edge.pose.roi import detection_to_roi, normalize_radians, object_scale_px, roi_iou
from edge.pose.segmentation import smooth_segmentation
from edge.pose.types import Roi


def test_anchors_count_and_values() -> None:
    a = generate_anchors()
    assert a.shape == (2254, 4)
    # stride 8: 28 x 28 cells x 2 anchors; stride 16: 14 x 14 x 2; stride 32: 7 x 7 x 6.
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(a[1960], [0.5 / 7, 0.5 / 7, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7, 1, 1], rtol=1e-6)


def _raw_detection(anchor_index: int, box_px: tuple[float, float, float, float]) -> np.ndarray:
    raw = np.zeros((2254, 12), np.float32)
    dx, dy, w, h = box_px
    raw[anchor_index, :4] = [dx, dy, w, h]
    for k in range(4):
        raw[anchor_index, 4 + 2 * k : 6 + 2 * k] = [dx + 10 * k, dy - 20 * k]
    return raw


def test_decode_detection_box_keypoints_and_score_clipping() -> None:
    anchors = generate_anchors()
    raw = _raw_detection(1568, (22.4, -11.2, 44.8, 67.2))
    scores = np.full((2254, 1), -1000.0, np.float32)  # clipped to -100: still ~0
    scores[1568] = 1000.0  # clipped to +100 -> 1.0, no overflow
    d = decode_detections(raw, scores, anchors, min_score=0.5)
    assert len(d) == 1
    assert d.scores[0] == pytest.approx(1.0)
    cx, cy = 0.5 / 14 + 0.1, 0.5 / 14 - 0.05
    np.testing.assert_allclose(d.boxes[0], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    np.testing.assert_allclose(d.keypoints[0, 2], [cx + 20 / 224, cy - 40 / 224], atol=1e-6)


def test_decode_threshold() -> None:
    anchors = generate_anchors()
    scores = np.zeros((2254,), np.float32)  # sigmoid 0.5: kept at >= 0.5
    scores[:2000] = -0.1
    d = decode_detections(np.zeros((2254, 12), np.float32), scores, anchors, min_score=0.5)
    assert len(d) == 254
    scores[2000] = 0.2
    strict = decode_detections(
        np.zeros((2254, 12), np.float32), scores, anchors, min_score=0.5, strict=True
    )
    assert len(strict) == 1  # a tie at exactly 0.5 does not count


def test_weighted_nms_merges_overlaps_and_keeps_separate() -> None:
    boxes = np.array(
        [[0.1, 0.1, 0.5, 0.5], [0.12, 0.12, 0.52, 0.52], [0.6, 0.6, 0.9, 0.9]], np.float32
    )
    kps = np.stack([boxes[:, :2]] * 4, axis=1)
    dets = Detections(np.array([0.6, 0.9, 0.8], np.float32), boxes, kps)
    out = weighted_nms(dets, iou_threshold=0.3)
    assert len(out) == 2
    np.testing.assert_allclose(out.scores, [0.9, 0.8])
    expected = (0.9 * boxes[1] + 0.6 * boxes[0]) / 1.5
    np.testing.assert_allclose(out.boxes[0], expected, atol=1e-6)
    np.testing.assert_allclose(out.keypoints[0, 0], expected[:2], atol=1e-6)
    np.testing.assert_allclose(out.boxes[1], boxes[2])


def test_weighted_nms_iou_at_threshold_is_not_merged() -> None:
    # IoU of these two is exactly 1/3 > 0.3 -> merged; shift so IoU = 0.25 -> kept.
    a = np.array([0.0, 0.0, 0.4, 0.4], np.float32)
    b = np.array([0.2, 0.0, 0.6, 0.4], np.float32)
    c = np.array([0.24, 0.0, 0.64, 0.4], np.float32)
    kps = np.zeros((2, 4, 2), np.float32)
    merged = weighted_nms(Detections(np.array([0.9, 0.8], np.float32), np.stack([a, b]), kps))
    kept = weighted_nms(Detections(np.array([0.9, 0.8], np.float32), np.stack([a, c]), kps))
    assert len(merged) == 1
    assert len(kept) == 2


def test_letterbox_padding_and_removal() -> None:
    roi, pad = letterbox_roi(640, 480, 224, 224)
    assert roi.width_px == roi.height_px == 640
    assert pad == pytest.approx((0.0, 0.125, 0.0, 0.125))
    dets = Detections(
        np.array([0.9], np.float32),
        np.array([[0.25, 0.125, 0.75, 0.875]], np.float32),
        np.array([[[0.5, 0.5]] * 4], np.float32),
    )
    out = remove_letterbox(dets, pad)
    np.testing.assert_allclose(out.boxes[0], [0.25, 0.0, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(out.keypoints[0, 0], [0.5, 0.5], atol=1e-6)


@pytest.mark.parametrize(
    ("end_offset", "rotation"),
    [
        ((0.0, -0.1), 0.0),
        ((0.1, 0.0), math.pi / 2),
        ((-0.1, 0.0), -math.pi / 2),
        ((0.0, 0.1), -math.pi),
    ],
)
def test_detection_to_roi_rotation_for_known_keypoints(
    end_offset: tuple[float, float], rotation: float
) -> None:
    w, h = 800, 400
    kp = np.array([[0.5, 0.5], [0.5 + end_offset[0], 0.5 + end_offset[1]]], np.float32)
    roi = detection_to_roi(kp, w, h)
    dist_px = math.hypot(end_offset[0] * w, end_offset[1] * h)
    assert roi.rotation_rad == pytest.approx(rotation, abs=1e-6)
    assert roi.center_x_px == pytest.approx(400) and roi.center_y_px == pytest.approx(200)
    assert roi.width_px == pytest.approx(2 * dist_px * 1.25, rel=1e-5)
    assert roi.height_px == roi.width_px
    assert object_scale_px(kp, w, h) == pytest.approx(2 * dist_px, rel=1e-5)


def test_normalize_radians() -> None:
    assert normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_radians(math.pi) == pytest.approx(-math.pi)
    assert normalize_radians(-0.3) == pytest.approx(-0.3)


def test_projection_round_trip() -> None:
    rng = np.random.default_rng(0)
    roi = Roi(300.0, 200.0, 180.0, 180.0, 0.7)
    pts = np.concatenate([rng.uniform(-0.2, 1.2, (39, 3)), rng.uniform(0, 1, (39, 2))], axis=1)
    pts = pts.astype(np.float32)
    image = project_landmarks(pts, roi, 640, 480)
    back = unproject_landmarks(image, roi, 640, 480)
    np.testing.assert_allclose(back, pts, atol=1e-5)
    # The crop centre lands on the ROI centre; z scales like x.
    centre = project_landmarks(np.array([[0.5, 0.5, 0.1, 1, 1]], np.float32), roi, 640, 480)
    np.testing.assert_allclose(centre[0, :3], [300 / 640, 200 / 480, 0.1 * 180 / 640], atol=1e-6)


def test_crop_and_projection_agree_on_a_marked_pixel() -> None:
    """A dot drawn in the frame, found in the rotated crop, projects back onto itself."""
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[150:153, 400:403] = 255  # centre (401, 151)
    roi = Roi(350.0, 220.0, 256.0, 256.0, math.radians(35))
    patch = warp_roi(frame, roi, 256, 256, "replicate")
    ys, xs = np.nonzero(patch[:, :, 0] > 60)
    weights = patch[ys, xs, 0].astype(np.float64)
    crop_xy = np.array([(xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()])
    lm = np.array([[crop_xy[0] / 256, crop_xy[1] / 256, 0, 1, 1]], np.float32)
    back = project_landmarks(lm, roi, 640, 480)[0, :2] * [640, 480]
    np.testing.assert_allclose(back, [401, 151], atol=0.6)


def test_four_channel_warp_is_bit_identical() -> None:
    """The faster RGBA path samples exactly what the 3-channel warp samples: ROIs inside,
    across and outside the frame, both borders, one scratch reused across frames."""
    rng = np.random.default_rng(7)
    rgba = RgbaScratch()
    for shape in ((120, 160, 3), (97, 211, 3), (120, 160, 3)):
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        h, w = shape[:2]
        for _ in range(40):
            roi = Roi(
                float(rng.uniform(-0.3 * w, 1.3 * w)),
                float(rng.uniform(-0.3 * h, 1.3 * h)),
                float(rng.uniform(8, 1.5 * w)),
                float(rng.uniform(8, 1.5 * w)),
                float(rng.uniform(-math.pi, math.pi)),
            )
            for border in ("replicate", "zero"):
                plain = warp_roi(frame, roi, 64, 48, border)
                fast = warp_roi(frame, roi, 64, 48, border, rgba=rgba)
                np.testing.assert_array_equal(fast, plain)


def test_int8_input_written_without_float_round_trip() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    roi = Roi(80.0, 60.0, 100.0, 100.0, 0.3)
    f32 = np.zeros((1, 64, 64, 3), np.float32)
    i8 = np.zeros((1, 64, 64, 3), np.int8)
    enc_f = make_encoding(np.dtype(np.float32), (0.0, 1.0))
    enc_q = make_encoding(np.dtype(np.int8), (0.0, 1.0), 1 / 255, -128)
    assert enc_q.kind == "xor128"
    crop_into_tensor(frame, roi, f32, enc_f, "replicate")
    crop_into_tensor(frame, roi, i8, enc_q, "replicate")
    np.testing.assert_array_equal(i8.astype(np.int16) + 128, np.rint(f32 * 255).astype(np.int16))
    np.testing.assert_array_equal(pixels_from_tensor(i8, enc_q), pixels_from_tensor(f32, enc_f))
    # Another quantisation goes through a lookup table, still integer only.
    enc_lut = make_encoding(np.dtype(np.int8), (-1.0, 1.0), 1 / 128, 0)
    assert enc_lut.kind == "lut"
    crop_into_tensor(frame, roi, i8, enc_lut, "zero")
    assert i8.min() >= -128 and i8.max() <= 127


def test_letterbox_border_is_zero_pixels() -> None:
    frame = np.full((100, 200, 3), 200, np.uint8)
    roi, _ = letterbox_roi(200, 100, 224, 224)
    t = np.zeros((1, 224, 224, 3), np.float32)
    crop_into_tensor(frame, roi, t, make_encoding(np.dtype(np.float32), (-1.0, 1.0)), "zero")
    assert t[0, 0, 112, 0] == pytest.approx(-1.0)  # padding row: pixel 0 -> -1
    assert t[0, 112, 112, 0] == pytest.approx(200 / 127.5 - 1, abs=1e-6)


def test_decode_landmarks_scales_and_sigmoids() -> None:
    raw = np.zeros((39, 5), np.float32)
    raw[3] = [128, 64, 32, 0, 100]
    lms = decode_landmarks(raw.reshape(-1))
    np.testing.assert_allclose(lms[3], [0.5, 0.25, 0.125, 0.5, 1.0], atol=1e-6)


def _blob_heatmap(center_col: float, center_row: float, channel: int) -> np.ndarray:
    hm = np.full((1, 64, 64, 39), -10.0, np.float32)
    rows, cols = np.mgrid[0:64, 0:64]
    d2 = (cols - center_col) ** 2 + (rows - center_row) ** 2
    hm[0, :, :, channel] = 6.0 - d2  # logit
    return hm


def test_heatmap_refinement_on_a_synthetic_blob() -> None:
    lms = np.zeros((39, 5), np.float32)
    lms[:, :2] = 0.5
    lms[5, :2] = [21.0 / 64, 30.5 / 64]  # cell (21, 30), blob at (20.4, 31.2)
    hm = _blob_heatmap(20.4, 31.2, 5)
    out = refine_from_heatmap(lms, hm, kernel_size=9)
    rows, cols = np.mgrid[26:35, 17:26]
    conf = 1 / (1 + np.exp(-(6.0 - ((cols - 20.4) ** 2 + (rows - 31.2) ** 2))))
    expect_x = (conf * cols).sum() / conf.sum() / 64
    expect_y = (conf * rows).sum() / conf.sum() / 64
    assert out[5, 0] == pytest.approx(expect_x, abs=1e-5)
    assert out[5, 1] == pytest.approx(expect_y, abs=1e-5)
    assert abs(out[5, 0] * 64 - 20.4) < 0.1
    # Other channels are cold (max confidence < 0.5): unchanged.
    np.testing.assert_array_equal(out[6], lms[6])


def test_heatmap_refinement_keeps_mediapipe_quirks() -> None:
    lms = np.zeros((39, 5), np.float32)
    lms[0, :2] = [-0.5, 0.5]  # column outside: skipped
    lms[1, :2] = [0.5, 65.0 / 64]  # row 65 past the bottom: not skipped, rows 61..63 used
    hm = np.full((1, 64, 64, 39), 5.0, np.float32)
    out = refine_from_heatmap(lms, hm, kernel_size=9)
    np.testing.assert_array_equal(out[0], lms[0])
    assert out[1, 1] == pytest.approx(62.0 / 64, abs=1e-6)
    assert out[1, 0] == pytest.approx(32.0 / 64, abs=1e-6)


def test_world_landmarks_rotate_about_z() -> None:
    w = np.array([[1.0, 0.0, 0.3]], np.float32)
    out = project_world_landmarks(w, math.pi / 2)
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.3]], atol=1e-6)


def test_low_pass_step_response() -> None:
    f = LowPassFilter(0.1)
    out = [float(f.apply(np.array([v]))[0]) for v in [0.0, 1.0, 1.0, 1.0]]
    assert out == pytest.approx([0.0, 0.1, 0.19, 0.271])


def test_one_euro_step_response() -> None:
    f = OneEuroFilter(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
    step_ns = 33_333_333
    values = [0.0] * 5 + [1.0] * 30
    out = [
        float(f.apply(np.array([v]), (i + 1) * step_ns, value_scale=0.01)[0])
        for i, v in enumerate(values)
    ]
    assert out[:5] == pytest.approx([0.0] * 5)
    # alpha for the step: derivative 30/s * 0.01 -> edvalue 0.3 * a_d; cutoff 0.05 + 80|ed|.
    a_d = 1 / (1 + (1 / (2 * math.pi)) * 30)
    cutoff = 0.05 + 80 * 0.3 * a_d
    alpha = 1 / (1 + 30 / (2 * math.pi * cutoff))
    assert out[5] == pytest.approx(alpha, rel=1e-4)
    assert all(b >= a for a, b in itertools.pairwise(out[5:]))  # monotone approach
    assert 0.9 < out[-1] <= 1.0
    # A timestamp that does not advance returns the value unfiltered.
    assert float(f.apply(np.array([5.0]), 35 * step_ns)[0]) == 5.0


def test_landmark_smoother_scales_to_pixels_and_resets() -> None:
    s = LandmarksSmoother(LANDMARKS_ONE_EURO)
    a = np.array([[0.5, 0.5, 0.0]], np.float32)
    b = np.array([[0.52, 0.5, 0.0]], np.float32)
    first = s.apply(a, 33_333_333, image_size_px=(640, 480), object_scale_px=200.0)
    np.testing.assert_allclose(first, a)
    second = s.apply(b, 66_666_666, image_size_px=(640, 480), object_scale_px=200.0)
    assert 0.5 < second[0, 0] < 0.52
    s.reset()
    np.testing.assert_allclose(
        s.apply(b, 99_999_999, image_size_px=(640, 480), object_scale_px=200.0), b
    )


def test_segmentation_smoothing_blends_where_uncertain() -> None:
    prev = np.zeros((2, 2), np.float32)
    cur = np.array([[0.5, 1.0], [0.0, 0.5]], np.float32)
    out = smooth_segmentation(cur, prev)
    assert out[0, 0] == pytest.approx(0.5 * 0.3)  # fully uncertain: 70 % previous
    assert out[0, 1] == pytest.approx(1.0, abs=0.02)  # confident: stays
    assert out[1, 0] == pytest.approx(0.0)


def test_roi_iou() -> None:
    a = Roi(100.0, 100.0, 50.0, 50.0, 0.0)
    assert roi_iou(a, a) == pytest.approx(1.0)
    assert roi_iou(a, Roi(125.0, 100.0, 50.0, 50.0, 0.0)) == pytest.approx(1 / 3, abs=1e-4)
    assert roi_iou(a, Roi(300.0, 100.0, 50.0, 50.0, 0.0)) == 0.0


def test_heatmap_refinement_on_the_raw_quantised_heatmap() -> None:
    lms = np.zeros((39, 5), np.float32)
    lms[:, :2] = 0.5
    lms[7, :2] = [40.0 / 64, 12.5 / 64]
    hm = _blob_heatmap(39.6, 12.2, 7)
    scale, zero_point = 0.25, 40
    raw = np.clip(np.rint(hm / scale) + zero_point, -128, 127).astype(np.int8)
    dequantised = (raw.astype(np.float32) - zero_point) * scale
    expected = refine_from_heatmap(lms, dequantised)
    got = refine_from_heatmap(lms, raw, quant_scale=scale, quant_zero_point=zero_point)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert abs(got[7, 0] * 64 - 39.6) < 0.15


def test_detector_input_quantisation_half_way_uses_the_direct_path() -> None:
    # The int8 detector's input: [-1, 1] with scale 1/127.5, zero point -1 puts every
    # pixel half way between two steps; v - 128 is as close as any rounding.
    enc = make_encoding(np.dtype(np.int8), (-1.0, 1.0), 0.007843137718737125, -1)
    assert enc.kind == "xor128"
    assert make_encoding(np.dtype(np.uint8), (0.0, 1.0), 1 / 255, 0).kind == "identity"


def test_stacked_pose_smoother_equals_mediapipes_separate_filters() -> None:
    from edge.pose.filters import (
        AUXILIARY_ONE_EURO,
        WORLD_ONE_EURO,
        PoseSmoother,
        VisibilitySmoother,
    )

    rng = np.random.default_rng(3)
    stacked = PoseSmoother()
    body_f = LandmarksSmoother(LANDMARKS_ONE_EURO)
    aux_f = LandmarksSmoother(AUXILIARY_ONE_EURO)
    world_f = LandmarksSmoother(WORLD_ONE_EURO)
    vis_f = VisibilitySmoother()
    size = (640, 480)
    for i in range(6):
        body = rng.uniform(0, 1, (33, 5)).astype(np.float32)
        aux = rng.uniform(0, 1, (2, 5)).astype(np.float32)
        world = rng.uniform(-1, 1, (33, 3)).astype(np.float32)
        ts = (i + 1) * 33_333_333
        b, a, w = stacked.apply(
            body, aux, world, timestamp_ns=ts, image_size_px=size, object_scale_px=150.0
        )
        np.testing.assert_allclose(
            b[:, :3],
            body_f.apply(body[:, :3], ts, image_size_px=size, object_scale_px=150.0),
            atol=1e-6,
        )
        np.testing.assert_allclose(b[:, 3], vis_f.apply(body[:, 3]), atol=1e-6)
        np.testing.assert_array_equal(b[:, 4], body[:, 4])  # presence is not smoothed
        np.testing.assert_allclose(
            a[:, :3],
            aux_f.apply(aux[:, :3], ts, image_size_px=size, object_scale_px=150.0),
            atol=1e-6,
        )
        np.testing.assert_allclose(w, world_f.apply(world, ts), atol=1e-6)
