"""The pose pipeline: detector only on loss, landmarks from the previous frame's ROI,
smoothing, world landmarks, segmentation and several people.

Wires the pure stages the way MediaPipe's ``PoseLandmarkCpu`` graph does
(``pose_landmark_cpu.pbtxt``) and adds what a presence sensor needs on top:

* **Ghost checks** (``ghost_checks``, on by default). MediaPipe's lite model keeps
  "tracking" things that are not people: furniture the detector scores just above
  0.5 and the landmark model then accepts with a flickering pose flag, or an empty
  region a person has just left. Here, when tracking, a track starts only from a
  detection scoring at least ``min_track_start_confidence``, and a track is
  re-checked by the detector when it looks stale: its pose flag falls below
  ``verify_below_pose_flag``, the presence of its torso landmarks collapses, its ROI
  centre leaves the frame, or it has not been confirmed for
  ``verify_interval_frames``. A track the detector does not confirm is dropped.
  Verifications of one track are at least
  ``verify_min_gap_frames`` apart, so the detector stays rare.
* **Several people** (``num_poses > 1``): one track per person with a stable integer
  id, the detector re-run every ``detector_interval_frames`` or when a track is lost,
  and duplicate suppression when two tracks converge. When the full-frame detector
  finds fewer people than ``num_poses``, overlapping square tiles of the frame are
  searched as well (all tiles in static mode; one tile per detector run, in turn,
  when tracking), which finds people too small for the 224 x 224 letterboxed frame.

Time is an argument (``timestamp_ns``); the only clock read is
``time.perf_counter_ns`` for the per-stage statistics in ``PoseResult.stage_ns``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.models import COMPLEXITY_NAMES, PRECISIONS, Precision, built_role, model_path
from edge.pose.anchors import generate_anchors
from edge.pose.crop import (
    DETECTOR_RANGE,
    LANDMARK_RANGE,
    RgbaScratch,
    crop_into_tensor,
    letterbox_roi,
    make_encoding,
)
from edge.pose.detection import (
    Detections,
    box_iou,
    decode_detections,
    remove_letterbox,
    weighted_nms,
)
from edge.pose.filters import PoseSmoother
from edge.pose.landmarks import (
    AUXILIARY,
    BODY,
    decode_landmarks,
    project_landmarks,
    project_world_landmarks,
    refine_from_heatmap,
)
from edge.pose.roi import (
    detection_to_roi,
    landmarks_to_roi,
    object_scale_px,
    roi_offset,
    same_region,
)
from edge.pose.segmentation import decode_segmentation, mask_to_frame, smooth_segmentation
from edge.pose.types import NUM_LANDMARKS, Pose, PoseResult, Roi

if TYPE_CHECKING:
    from edge.runtime import Model

logger = logging.getLogger(__name__)

DelegateName = Literal["cpu", "edgetpu"]
FallbackName = Literal["none", "cpu"]


@dataclass(frozen=True, slots=True)
class PoseOptions:
    """Pipeline options, with MediaPipe's names and defaults.

    One deliberate deviation: ``model_complexity`` defaults to 0 (lite, the
    product's int8 model; MediaPipe defaults to 1, full). The rest are this
    product's: ``precision`` (``int8`` committed models, the ``float``
    originals, or ``mixed``: the lite model's int8 build with float layers),
    ``num_threads``, ``delegate`` (``cpu`` or ``edgetpu``) with ``fallback``,
    ``detector_interval_frames`` (re-detect newcomers every N frames when
    ``num_poses > 1``) and the ghost checks (see the module docstring;
    ``ghost_checks=False`` gives MediaPipe's own tracking behaviour).

    ``min_pose_presence_confidence`` (Tasks API) is the pose flag a new track needs
    on its first frame; ``min_tracking_confidence`` the flag it needs afterwards.
    ``num_threads`` defaults to 2 (a Pi 4 has 4 cores; leave some for capture and
    publishing).
    """

    static_image_mode: bool = False
    model_complexity: int = 0
    smooth_landmarks: bool = True
    enable_segmentation: bool = False
    smooth_segmentation: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    num_poses: int = 1
    min_pose_presence_confidence: float = 0.5
    precision: Precision = "int8"
    num_threads: int = 2
    delegate: DelegateName = "cpu"
    fallback: FallbackName = "none"
    detector_interval_frames: int = 15
    reacquire_on_loss: bool = True
    ghost_checks: bool = True
    min_track_start_confidence: float = 0.75
    verify_below_pose_flag: float = 0.9
    verify_interval_frames: int = 300
    verify_min_gap_frames: int = 10
    #: A track is suspect when the mean presence of its torso landmarks drops below this.
    min_torso_presence: float = 0.5
    #: Two ROIs whose centres are closer than this fraction of their size (and of
    #: similar size) frame the same person: a detection confirms the track, and of
    #: two converging tracks the newer one is dropped.
    same_person_offset: float = 0.2

    def __post_init__(self) -> None:
        for name in (
            "min_detection_confidence",
            "min_tracking_confidence",
            "min_pose_presence_confidence",
            "min_torso_presence",
            "same_person_offset",
            "min_track_start_confidence",
            "verify_below_pose_flag",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.model_complexity not in (0, 1, 2):
            raise ValueError(
                f"model_complexity must be 0 (lite), 1 (full) or 2 (heavy), "
                f"got {self.model_complexity!r}"
            )
        if self.num_poses < 1:
            raise ValueError(f"num_poses must be >= 1, got {self.num_poses!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        built_role(COMPLEXITY_NAMES[self.model_complexity], self.precision)  # mixed: lite only
        if self.precision == "mixed" and self.delegate == "edgetpu":
            raise ValueError("the Edge TPU runs fully int8 models only; use precision 'int8'")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads!r}")
        if self.delegate not in ("cpu", "edgetpu"):
            raise ValueError(f"delegate must be 'cpu' or 'edgetpu', got {self.delegate!r}")
        if self.fallback not in ("none", "cpu"):
            raise ValueError(f"fallback must be 'none' or 'cpu', got {self.fallback!r}")
        if self.detector_interval_frames < 1:
            raise ValueError(
                f"detector_interval_frames must be >= 1, got {self.detector_interval_frames!r}"
            )
        for name in ("verify_interval_frames", "verify_min_gap_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


class _ModelIO:
    """Finds a model's tensors by shape and knows how to fill its input."""

    def __init__(
        self, model: Model, value_range: tuple[float, float], role: str, rgba: RgbaScratch
    ) -> None:
        self.model = model
        self.rgba = rgba
        info = model.inputs[0]
        if len(info.shape) != 4 or info.shape[-1] != 3:
            raise ValueError(f"{role} model input must be 1xHxWx3, got {info.shape}")
        self.height = int(info.shape[1])
        self.width = int(info.shape[2])
        self.encoding = make_encoding(info.dtype, value_range, info.scale, info.zero_point)
        self.scratch = np.empty((self.height, self.width, 3), np.uint8)

    def fill(
        self, image: NDArray[np.uint8], roi: Roi, border: Literal["zero", "replicate"]
    ) -> None:
        crop_into_tensor(
            image,
            roi,
            self.model.input_buffer(0),
            self.encoding,
            border,
            scratch=self.scratch,
            rgba=self.rgba,
        )

    def output_index(self, predicate: Any, what: str) -> int:
        for i, info in enumerate(self.model.outputs):
            if predicate(tuple(info.shape)):
                return i
        shapes = [tuple(o.shape) for o in self.model.outputs]
        raise ValueError(f"model {self.model.path} has no {what} output (outputs: {shapes})")


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


@dataclass(slots=True)
class _Track:
    """One tracked person (mutable state inside the pipeline only)."""

    id: int
    roi: Roi
    age_frames: int = 0
    frames_since_confirmed: int = 0
    frames_since_verified: int = 1_000_000
    suspect: bool = False
    smoother: PoseSmoother | None = None


@dataclass(frozen=True, slots=True)
class _LandmarkOutput:
    flag: float
    landmarks: NDArray[np.float32]  # (35, 5) frame-normalised: body + auxiliary
    world: NDArray[np.float32]  # (33, 3)
    mask: NDArray[np.float32] | None  # (H, W) frame mask


class PosePipeline:
    """BlazePose on one frame at a time; see the module docstring.

    Takes models that are already loaded (``edge.runtime.Model``); use
    :func:`build_pipeline` to load them from options.
    """

    def __init__(self, options: PoseOptions, detector: Model, landmarker: Model) -> None:
        import cv2

        # OpenCV's pool threads spin after each parallel call and then compete with
        # the interpreter's threads: about 0.6 ms of CPU per frame for a 0.55 ms crop
        # warp (dance.mp4, 1-2 interpreter threads). The warps run on the calling
        # thread instead; pixels are identical.
        cv2.setNumThreads(1)
        self.options = options
        # One 4-channel frame buffer shared by both models' crops (see RgbaScratch).
        rgba = RgbaScratch()
        self._det = _ModelIO(detector, DETECTOR_RANGE, "detector", rgba)
        self._lm = _ModelIO(landmarker, LANDMARK_RANGE, "landmark", rgba)
        det_outs = detector.outputs
        self._i_boxes = self._det.output_index(lambda s: len(s) == 3 and s[-1] >= 12, "boxes")
        self._i_scores = self._det.output_index(lambda s: len(s) == 3 and s[-1] == 1, "scores")
        self._anchors = generate_anchors()
        n_anchors = int(det_outs[self._i_boxes].shape[1])
        if n_anchors != self._anchors.shape[0]:
            raise ValueError(f"detector has {n_anchors} boxes, anchors give {len(self._anchors)}")
        self._i_landmarks = self._lm.output_index(lambda s: _size(s) == 195, "landmarks")
        self._i_flag = self._lm.output_index(lambda s: _size(s) == 1, "pose flag")
        self._i_world = self._lm.output_index(lambda s: _size(s) == 117, "world landmarks")
        self._i_heatmap = self._lm.output_index(lambda s: len(s) == 4 and s[-1] == 39, "heatmap")
        self._i_seg = self._lm.output_index(lambda s: len(s) == 4 and s[-1] == 1, "segmentation")
        #: Frames on which the detector ran, and detector invocations (tiles included).
        self.detector_runs = 0
        self.detector_invocations = 0
        self.frames = 0
        self._next_tile = 0
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame_size: tuple[int, int] | None = None
        self._frames_since_detector = 0
        self._loss_retries = 0
        self._lost_rois: list[tuple[Roi, int]] = []
        self._recently_lost: list[tuple[Roi, int]] = []
        self._stream_frames = 0
        self._prev_mask: NDArray[np.float32] | None = None

    # -- public -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget all tracks and filters and zero the counters."""
        self.reset_stream()
        self.detector_runs = 0
        self.detector_invocations = 0
        self.frames = 0
        self._next_id = 0
        self._next_tile = 0

    def reset_stream(self) -> None:
        """Forget tracks and filters (a new, unrelated stream starts); keep counters and ids."""
        self._tracks = []
        self._frame_size = None
        self._frames_since_detector = 0
        self._loss_retries = 0
        self._lost_rois = []
        self._recently_lost = []
        self._stream_frames = 0
        self._prev_mask = None

    def process(self, image_rgb: NDArray[np.uint8], timestamp_ns: int) -> PoseResult:
        """Estimate the poses in one RGB uint8 frame (H x W x 3) taken at ``timestamp_ns``."""
        if not isinstance(image_rgb, np.ndarray):
            raise ValueError(
                f"image_rgb must be an HxWx3 uint8 numpy array, got {type(image_rgb).__name__}"
            )
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(
                f"image_rgb must be an HxWx3 uint8 array, got {image_rgb.dtype} {image_rgb.shape}"
            )
        if image_rgb.shape[0] < 2 or image_rgb.shape[1] < 2:
            raise ValueError(f"image_rgb is too small: {image_rgb.shape}")
        image = np.ascontiguousarray(image_rgb)
        height, width = int(image.shape[0]), int(image.shape[1])
        stages = {"detector": 0, "landmarks": 0, "preprocess": 0, "postprocess": 0}
        opts = self.options
        if self._frame_size != (width, height) or opts.static_image_mode:
            self._tracks = []
            self._prev_mask = None
            self._frame_size = (width, height)
            self._stream_frames = 0
        self.frames += 1
        self._stream_frames += 1

        detector_ran = False
        self._frames_since_detector += 1
        if self._should_detect():
            self._merge_detections(
                self._detect(image, width, height, stages), width, height, stages
            )
            detector_ran = True
        results = self._run_tracks(self._tracks, image, timestamp_ns, stages)
        lost = len(results) < len(self._tracks)
        if lost and not detector_ran and opts.reacquire_on_loss and not opts.static_image_mode:
            # Look for the person again on this very frame instead of losing a frame.
            self._tracks = [track for track, _, _ in results]
            self._merge_detections(
                self._detect(image, width, height, stages), width, height, stages
            )
            detector_ran = True
            known = {id(track) for track, _, _ in results}
            new = [t for t in self._tracks if id(t) not in known]
            alive = {id(t) for t in self._tracks}
            results = [r for r in results if id(r[0]) in alive]
            results += self._run_tracks(new, image, timestamp_ns, stages)
        kept = [track for track, _, _ in results]
        poses = [pose for _, pose, _ in results]
        masks = [mask for _, _, mask in results if mask is not None]
        t0 = time.perf_counter_ns()
        kept, poses = self._suppress_duplicates(kept, poses)
        self._tracks = kept
        if opts.static_image_mode:
            self._tracks = []
        segmentation = (
            self._segmentation(masks, width, height) if opts.enable_segmentation else None
        )
        stages["postprocess"] += time.perf_counter_ns() - t0
        return PoseResult(
            timestamp_ns=int(timestamp_ns),
            width=width,
            height=height,
            poses=tuple(poses),
            segmentation=segmentation,
            detector_ran=detector_ran,
            stage_ns=stages,
        )

    def _run_tracks(
        self,
        tracks: list[_Track],
        image: NDArray[np.uint8],
        timestamp_ns: int,
        stages: dict[str, int],
    ) -> list[tuple[_Track, Pose, NDArray[np.float32] | None]]:
        """Landmarks for each track; tracks whose pose flag fails are left out."""
        height, width = int(image.shape[0]), int(image.shape[1])
        results: list[tuple[_Track, Pose, NDArray[np.float32] | None]] = []
        for track in tracks:
            threshold = self._flag_threshold(track)
            out = self._landmarks(
                image, track.roi, width, height, flag_threshold=threshold, stages=stages
            )
            t0 = time.perf_counter_ns()
            if out.flag <= threshold:
                self._loss_retries = LOSS_RETRY_FRAMES
                self._lost_rois.append((track.roi, track.id))
            else:
                pose = self._update_track(track, out, timestamp_ns, width, height)
                results.append((track, pose, out.mask))
            stages["postprocess"] += time.perf_counter_ns() - t0
        return results

    def _flag_threshold(self, track: _Track) -> float:
        """The pose flag a track must beat: ``min_pose_presence_confidence`` on the
        frame its detection starts it (the Tasks API's meaning), then
        ``min_tracking_confidence`` (the legacy solution uses that one for both; with
        the defaults, 0.5 and 0.5, they agree)."""
        opts = self.options
        if track.age_frames == 0:
            return opts.min_pose_presence_confidence
        return opts.min_tracking_confidence

    # -- detection ----------------------------------------------------------------

    def _should_detect(self) -> bool:
        opts = self.options
        if opts.static_image_mode or not self._tracks:
            return True
        if any(t.suspect for t in self._tracks):
            return True
        if len(self._tracks) < opts.num_poses:
            if self._loss_retries > 0:
                return True
            return self._frames_since_detector + 1 >= opts.detector_interval_frames
        return False

    def _detect(
        self, image: NDArray[np.uint8], width: int, height: int, stages: dict[str, int]
    ) -> Detections:
        """Full-frame detection, plus tiles when fewer than ``num_poses`` were found."""
        opts = self.options
        roi, padding = letterbox_roi(width, height, self._det.width, self._det.height)
        found = remove_letterbox(self._detect_in(image, roi, stages), padding)
        self.detector_runs += 1
        self._frames_since_detector = 0
        self._loss_retries = max(0, self._loss_retries - 1)
        lost = self._lost_rois
        self._recently_lost = lost
        if self._loss_retries == 0:
            self._lost_rois = []
        tracks = [] if opts.static_image_mode else self._tracks
        wanted = max(opts.num_poses - len(tracks), 1)
        unconfirmed = [t for t in tracks if t.suspect and not self._seen(found, t, width, height)]
        if not unconfirmed and self._count_new(found, tracks, width, height) >= wanted:
            return found
        # Where a person was just lost, or a suspect track was not confirmed, look
        # again closer up: the full frame is shrunk to 224 px and misses people a
        # closer crop still finds.
        tiles = [tile_around(roi, width, height) for roi, _ in lost]
        tiles += [tile_around(t.roi, width, height) for t in unconfirmed]
        if opts.num_poses > 1:
            grid = detection_tiles(width, height)
            # Static images and the first frame of a stream search every tile; later
            # detector runs search one tile each, in turn.
            if opts.static_image_mode or self._stream_frames <= 1:
                tiles += grid
            else:
                tiles.append(grid[self._next_tile % len(grid)])
                self._next_tile += 1
        if not tiles:
            return found
        parts = [found]
        for tile in tiles:
            local = self._detect_in(image, tile, stages)
            # A close-up crop makes furniture look like people more often: detections
            # in tiles must be as strong as a new track needs, in static mode too.
            strong = np.flatnonzero(local.scores >= opts.min_track_start_confidence)
            parts.append(tile_to_frame(local.take(strong), tile, width, height))
        return merge_detections(parts)

    @property
    def _start_threshold(self) -> float:
        """Detector score a new track needs: ``min_track_start_confidence`` when
        tracking with ghost checks; in static mode nothing persists, so MediaPipe's
        ``min_detection_confidence`` alone decides."""
        opts = self.options
        if opts.ghost_checks and not opts.static_image_mode:
            return opts.min_track_start_confidence
        return 0.0

    def _reuse_or_new_id(self, roi: Roi, tracks: list[_Track]) -> int:
        """The id of a person lost in the last few frames where ``roi`` is, else a new id."""
        taken = {t.id for t in tracks}
        for lost_roi, lost_id in self._recently_lost:
            if lost_id not in taken and same_region(lost_roi, roi, REACQUIRE_OFFSET, 2.0):
                return lost_id
        self._next_id += 1
        return self._next_id - 1

    def _seen(self, detections: Detections, track: _Track, width: int, height: int) -> bool:
        """Whether a detection strong enough to confirm ``track`` frames it."""
        opts = self.options
        for i in range(len(detections)):
            if detections.scores[i] < self._start_threshold:
                continue
            roi = detection_to_roi(detections.keypoints[i], width, height)
            if same_region(track.roi, roi, opts.same_person_offset):
                return True
        return False

    def _count_new(
        self, detections: Detections, tracks: list[_Track], width: int, height: int
    ) -> int:
        """Detections (strong enough to start a track) of people not tracked yet."""
        opts = self.options
        count = 0
        for i in range(len(detections)):
            if detections.scores[i] < self._start_threshold:
                continue
            roi = detection_to_roi(detections.keypoints[i], width, height)
            if not any(same_region(t.roi, roi, opts.same_person_offset) for t in tracks):
                count += 1
        return count

    def _detect_in(self, image: NDArray[np.uint8], roi: Roi, stages: dict[str, int]) -> Detections:
        """One detector invocation on ``roi`` (coordinates normalised to the ROI)."""
        t0 = time.perf_counter_ns()
        self._det.fill(image, roi, "zero")
        t1 = time.perf_counter_ns()
        self._det.model.invoke()
        t2 = time.perf_counter_ns()
        boxes = self._det.model.output(self._i_boxes)
        scores = self._det.model.output(self._i_scores)
        decoded = decode_detections(
            boxes.reshape(boxes.shape[-2], boxes.shape[-1]),
            scores,
            self._anchors,
            min_score=self.options.min_detection_confidence,
            scale_px=float(self._det.width),
            # A tie does not count: an int8 score tensor puts many background anchors
            # at exactly sigmoid(0) = 0.5, the default threshold.
            strict=True,
        )
        detections = weighted_nms(decoded)
        t3 = time.perf_counter_ns()
        stages["preprocess"] += t1 - t0
        stages["detector"] += t2 - t1
        stages["postprocess"] += t3 - t2
        self.detector_invocations += 1
        return detections

    def _merge_detections(
        self, detections: Detections, width: int, height: int, stages: dict[str, int]
    ) -> None:
        """Confirm tracks the detector still sees, drop unconfirmed suspects, start tracks."""
        t0 = time.perf_counter_ns()
        opts = self.options
        rois = [
            detection_to_roi(detections.keypoints[i], width, height) for i in range(len(detections))
        ]
        strong = [
            float(detections.scores[i]) >= self._start_threshold for i in range(len(detections))
        ]
        matched: set[int] = set()
        survivors: list[_Track] = []
        limit = opts.same_person_offset
        for track in self._tracks:
            best, best_offset = -1, math.inf
            for j, roi in enumerate(rois):
                if j in matched or not same_region(track.roi, roi, limit):
                    continue
                offset = roi_offset(track.roi, roi)
                if offset < best_offset:
                    best, best_offset = j, offset
            confirmed = best >= 0
            if confirmed:
                matched.add(best)
            if track.suspect:
                track.frames_since_verified = 0
            if confirmed and strong[best]:
                track.frames_since_confirmed = 0
                track.suspect = False
                survivors.append(track)
            elif track.suspect and opts.ghost_checks:
                logger.debug("track %d not confirmed by the detector: dropped", track.id)
                self._loss_retries = LOSS_RETRY_FRAMES
            else:
                survivors.append(track)
        for j, roi in enumerate(rois):
            if len(survivors) >= opts.num_poses:
                break
            if j in matched or not strong[j]:
                continue
            if any(same_region(t.roi, roi, limit) for t in survivors):
                continue
            survivors.append(_Track(id=self._reuse_or_new_id(roi, survivors), roi=roi))
        self._tracks = survivors
        stages["postprocess"] += time.perf_counter_ns() - t0

    # -- landmarks ----------------------------------------------------------------

    def _landmarks(
        self,
        image: NDArray[np.uint8],
        roi: Roi,
        width: int,
        height: int,
        *,
        flag_threshold: float,
        stages: dict[str, int],
    ) -> _LandmarkOutput:
        t0 = time.perf_counter_ns()
        self._lm.fill(image, roi, "replicate")
        t1 = time.perf_counter_ns()
        model = self._lm.model
        model.invoke()
        t2 = time.perf_counter_ns()
        flag = float(model.output(self._i_flag).reshape(-1)[0])
        if flag <= flag_threshold:
            stages["preprocess"] += t1 - t0
            stages["landmarks"] += t2 - t1
            empty = np.zeros((0, 5), np.float32)
            return _LandmarkOutput(flag, empty, np.zeros((0, 3), np.float32), None)
        raw = decode_landmarks(
            model.output(self._i_landmarks).reshape(-1), self._lm.width, self._lm.height
        )
        hm_info = model.outputs[self._i_heatmap]
        # Landmarks 35-38 are unused: refine the body and the auxiliary ones only.
        refined = refine_from_heatmap(
            raw[: AUXILIARY.stop],
            model.output_raw(self._i_heatmap),
            quant_scale=hm_info.scale if hm_info.quantized else 0.0,
            quant_zero_point=hm_info.zero_point,
        )
        projected = project_landmarks(refined, roi, width, height)
        world = project_world_landmarks(
            model.output(self._i_world).reshape(-1, 3)[:NUM_LANDMARKS], roi.rotation_rad
        )
        mask = None
        if self.options.enable_segmentation:
            mask = mask_to_frame(decode_segmentation(model.output(self._i_seg)), roi, width, height)
        t3 = time.perf_counter_ns()
        stages["preprocess"] += t1 - t0
        stages["landmarks"] += t2 - t1
        stages["postprocess"] += t3 - t2
        return _LandmarkOutput(flag, projected, world, mask)

    def _update_track(
        self, track: _Track, out: _LandmarkOutput, timestamp_ns: int, width: int, height: int
    ) -> Pose:
        opts = self.options
        body = out.landmarks[BODY].copy()
        aux = out.landmarks[AUXILIARY].copy()
        world = out.world.copy()
        frame_roi = track.roi
        smooth = opts.smooth_landmarks and not opts.static_image_mode
        if smooth:
            if track.smoother is None:
                track.smoother = PoseSmoother()
            body, aux, world = track.smoother.apply(
                body,
                aux,
                world,
                timestamp_ns=timestamp_ns,
                image_size_px=(width, height),
                object_scale_px=object_scale_px(aux[:, :2], width, height),
            )
        next_roi = landmarks_to_roi(aux[:, :2], width, height)
        track.roi = next_roi
        track.age_frames += 1
        track.frames_since_confirmed += 1
        track.frames_since_verified += 1
        if opts.ghost_checks and not opts.static_image_mode:
            track.suspect = self._is_stale(track, out.flag, body, width, height)
        return Pose(
            id=track.id,
            score=out.flag,
            landmarks=body.astype(np.float32),
            world=world.astype(np.float32),
            roi=frame_roi,
        )

    def _is_stale(
        self, track: _Track, flag: float, body: NDArray[np.float32], width: int, height: int
    ) -> bool:
        """Whether the detector should re-check this track on the next frame."""
        opts = self.options
        if track.frames_since_confirmed >= opts.verify_interval_frames:
            return True
        if track.frames_since_verified < opts.verify_min_gap_frames:
            return False
        if flag < opts.verify_below_pose_flag:
            return True
        torso_presence = float(body[[11, 12, 23, 24], 4].mean())
        if torso_presence < opts.min_torso_presence:
            return True
        roi = track.roi
        return not (0.0 <= roi.center_x_px < width and 0.0 <= roi.center_y_px < height)

    def _suppress_duplicates(
        self, tracks: list[_Track], poses: list[Pose]
    ) -> tuple[list[_Track], list[Pose]]:
        if len(tracks) < 2:
            return tracks, poses
        keep = [True] * len(tracks)
        for i in range(len(tracks)):
            for j in range(i + 1, len(tracks)):
                if not (keep[i] and keep[j]):
                    continue
                if self._same_person(tracks[i], poses[i], tracks[j], poses[j]):
                    # The older track (smaller id) keeps its identity.
                    drop = j if tracks[i].id < tracks[j].id else i
                    keep[drop] = False
                    self._loss_retries = LOSS_RETRY_FRAMES
        return (
            [t for t, k in zip(tracks, keep, strict=True) if k],
            [p for p, k in zip(poses, keep, strict=True) if k],
        )

    def _same_person(self, ta: _Track, pa: Pose, tb: _Track, pb: Pose) -> bool:
        if same_region(ta.roi, tb.roi, self.options.same_person_offset):
            return True
        w, h = self._frame_size or (1, 1)
        da = pa.landmarks[:, :2] * (w, h)
        db = pb.landmarks[:, :2] * (w, h)
        dist = float(np.median(np.linalg.norm(da - db, axis=1)))
        size = min(ta.roi.width_px, tb.roi.width_px)
        return dist < 0.05 * size

    # -- segmentation -------------------------------------------------------------

    def _segmentation(
        self, masks: list[NDArray[np.float32]], width: int, height: int
    ) -> NDArray[np.float32]:
        if masks:
            combined = masks[0] if len(masks) == 1 else np.maximum.reduce(masks)
        else:
            combined = np.zeros((height, width), np.float32)
        opts = self.options
        if opts.smooth_segmentation and not opts.static_image_mode and masks:
            combined = smooth_segmentation(combined, self._prev_mask)
        self._prev_mask = combined if masks else None
        return combined


#: A new track within this ROI offset of a person lost in the last few frames keeps
#: that person's id.
REACQUIRE_OFFSET = 0.5
#: Frames after a track is lost on which the detector looks for that person again.
LOSS_RETRY_FRAMES = 5
#: Tile side as a fraction of the frame's short side, and tile overlap.
TILE_FRACTION = 0.75


def detection_tiles(width: int, height: int) -> list[Roi]:
    """Overlapping square tiles (side 0.75 x the short side, about half overlapping)
    covering the frame, row by row."""
    side = TILE_FRACTION * min(width, height)

    def centres(length: int) -> list[float]:
        count = max(1, math.ceil((length - side) / (side / 2)) + 1)
        if count == 1:
            return [length / 2.0]
        return [side / 2 + i * (length - side) / (count - 1) for i in range(count)]

    return [Roi(cx, cy, side, side, 0.0) for cy in centres(height) for cx in centres(width)]


def tile_around(roi: Roi, width: int, height: int) -> Roi:
    """An axis-aligned square search tile around a (lost) person's ROI: 1.2x its side,
    between 0.3x and 1x the frame's short side, moved inside the frame."""
    short = min(width, height)
    side = min(max(1.2 * max(roi.width_px, roi.height_px), 0.3 * short), float(short))
    cx = min(max(roi.center_x_px, side / 2), width - side / 2)
    cy = min(max(roi.center_y_px, side / 2), height - side / 2)
    return Roi(cx, cy, side, side, 0.0)


def tile_to_frame(detections: Detections, tile: Roi, width: int, height: int) -> Detections:
    """Map detections normalised to an axis-aligned tile to frame-normalised coordinates."""
    x0 = tile.center_x_px - tile.width_px / 2
    y0 = tile.center_y_px - tile.height_px / 2
    sx = np.float32(tile.width_px / width)
    sy = np.float32(tile.height_px / height)
    ox = np.float32(x0 / width)
    oy = np.float32(y0 / height)
    boxes = detections.boxes * np.array([sx, sy, sx, sy], np.float32) + np.array(
        [ox, oy, ox, oy], np.float32
    )
    kps = detections.keypoints * np.array([sx, sy], np.float32) + np.array([ox, oy], np.float32)
    return Detections(detections.scores, boxes.astype(np.float32), kps.astype(np.float32))


def merge_detections(parts: list[Detections], iou_threshold: float = 0.3) -> Detections:
    """Union of detections from several searches, best first; a detection whose face
    box overlaps an already kept one (IoU > ``iou_threshold``) is dropped (the
    full-frame search comes first and wins ties)."""
    kept: list[tuple[int, int]] = []
    candidates = [(float(d.scores[i]), -k, i) for k, d in enumerate(parts) for i in range(len(d))]
    for _score, neg_k, i in sorted(candidates, reverse=True):
        box = parts[-neg_k].boxes[i]
        if kept:
            others = np.stack([parts[k].boxes[j] for k, j in kept])
            if float(box_iou(box, others).max()) > iou_threshold:
                continue
        kept.append((-neg_k, i))
    if not kept:
        return Detections.empty()
    return Detections(
        np.array([parts[k].scores[j] for k, j in kept], np.float32),
        np.stack([parts[k].boxes[j] for k, j in kept]).astype(np.float32),
        np.stack([parts[k].keypoints[j] for k, j in kept]).astype(np.float32),
    )


def build_pipeline(options: PoseOptions, models_dir: Path | None = None) -> PosePipeline:
    """Load the detector and the landmark model the options ask for and build a pipeline."""
    from edge.runtime import load_model

    landmark_name = COMPLEXITY_NAMES[options.model_complexity]
    kwargs: dict[str, Any] = {
        "num_threads": options.num_threads,
        "delegate": options.delegate,
        "fallback": options.fallback,
    }
    detector = load_model(model_path("detector", options.precision, models_dir), **kwargs)
    landmarker = load_model(model_path(landmark_name, options.precision, models_dir), **kwargs)
    return PosePipeline(options, detector, landmarker)


def torso_size(landmarks_xy: NDArray[np.floating]) -> float:
    """Shoulder-midpoint to hip-midpoint distance of (33, >=2) landmarks."""
    shoulders = (landmarks_xy[11, :2] + landmarks_xy[12, :2]) / 2
    hips = (landmarks_xy[23, :2] + landmarks_xy[24, :2]) / 2
    return float(math.dist(shoulders.tolist(), hips.tolist()))
