"""dlib's back ends: HOG and MMOD CNN detection, and the five ArcFace points from dlib's 68-point
shape predictor (``face-recognition-models``), whose eye contours, nose tip (point 30) and mouth
corners (48, 54) give them. YuNet takes its points from here too."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.faces.base import Detection


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


def import_dlib():
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


class DlibBase:
    """dlib detection with landmarks from the 68-point shape predictor."""

    name = "dlib"

    def __init__(self, upsample: int = 0):
        self._dlib = import_dlib()
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


class DlibHogDetector(DlibBase):
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


class DlibCnnDetector(DlibBase):
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
