"""Faces in video frames: detection back ends, 5-point alignment to the ArcFace template, and
tracking (one subject, or every face). Frames are RGB uint8 arrays (H, W, 3) throughout."""

from abaw_expr.faces.align import ARCFACE_TEMPLATE, align_face, similarity_to_template
from abaw_expr.faces.detectors import DETECTORS, Detection, FaceDetector, build_detector, iou
from abaw_expr.faces.tracking import FaceObservation, MultiFaceTracker, SubjectTracker, Track

__all__ = [
    "ARCFACE_TEMPLATE",
    "DETECTORS",
    "Detection",
    "FaceDetector",
    "FaceObservation",
    "MultiFaceTracker",
    "SubjectTracker",
    "Track",
    "align_face",
    "build_detector",
    "iou",
    "similarity_to_template",
]
