"""BlazePose, as MediaPipe runs it: pure numeric stages plus the tracking pipeline.

Stages (one module each, named after the MediaPipe calculators they mirror):
:mod:`~edge.pose.anchors`, :mod:`~edge.pose.detection`, :mod:`~edge.pose.roi`,
:mod:`~edge.pose.crop`, :mod:`~edge.pose.landmarks`, :mod:`~edge.pose.segmentation`,
:mod:`~edge.pose.filters`. Results are the frozen types of :mod:`~edge.pose.types`.
"""

from edge.pose.pipeline import PoseOptions, PosePipeline, build_pipeline
from edge.pose.types import Pose, PoseResult, Roi

__all__ = ["Pose", "PoseOptions", "PosePipeline", "PoseResult", "Roi", "build_pipeline"]
