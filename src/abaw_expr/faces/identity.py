"""Who a face is: dlib's face descriptor (a 128-d embedding; two photos of one person lie closer
than ``SAME_PERSON_DISTANCE``), used to join the pieces of one person's track and to keep
apart people that motion alone would mix up.

The model is dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat`` in the
``face-recognition-models`` package the detectors already need; 99.38 % on LFW by its authors).
It wants a 150x150 chip cut as ``dlib.get_face_chip`` cuts one from its 68 points; here the chip
is cut from the pass's own five points by a similarity to where that chip puts them
(``CHIP_TEMPLATE``, measured on real faces), so any detector's points serve.

A descriptor costs about 80 ms on one core, twenty frames' worth of face search, so it is not
computed as frames go by: a track keeps a few chips (:class:`ChipSamples`), and descriptors
are computed, once each, only when a decision needs them.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .detectors import _import_dlib, dlib_model_dir

CHIP_SIZE = 150
# Where dlib.get_face_chip(image, shape68, 150, padding=0.25) puts the five points (eye centres,
# nose tip, mouth corners; left as seen first): the mean over real faces (benchmarks/identity.py).
CHIP_TEMPLATE = np.array(
    [[46.58, 46.85], [101.56, 47.33], [73.30, 77.58], [50.00, 102.14], [98.80, 101.29]],
    np.float32,
)
# Euclidean distance between two tracks' mean descriptors under which they are one person,
# measured on real faces (benchmarks/identity.py, RESULTS "issue 24"). dlib's own 0.6, from
# LFW's well-lit photos, joined different people in video: a crowd's turned and blurred faces
# lie 0.42-0.55 apart.
SAME_PERSON_DISTANCE = 0.4
# A face that comes back where a person was lost, in the same shot and soon after, needs only
# to be no further than dlib's own threshold (from LFW).
SAME_PLACE_DISTANCE = 0.6
# A chip whose face (its central 80x100 pixels) has a grey-level standard deviation under this
# is too dark or flat to tell who it is: dlib's descriptors of such faces (a dimly lit audience)
# lie 0.24-0.4 apart for different people. They are not kept.
MIN_CONTRAST = 10.0


def contrast(chip: np.ndarray) -> float:
    """The grey-level standard deviation of the face in a chip (eyes to chin)."""
    grey = cv2.cvtColor(chip[30:130, 35:115], cv2.COLOR_RGB2GRAY)
    return float(grey.std())


def face_chip(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The 150x150 RGB chip the descriptor wants, cut from ``frame`` at the five ``points``."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(points, np.float32), CHIP_TEMPLATE, method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("degenerate landmarks")
    return cv2.warpAffine(frame, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR)


class FaceEmbedder:
    """``embed(chips) -> (n, 128) float32``: dlib's descriptors of :func:`face_chip` chips."""

    _lock = threading.Lock()
    _model = None

    def __init__(self):
        with FaceEmbedder._lock:  # one model per process, loaded on first use (about 0.3 s)
            if FaceEmbedder._model is None:
                dlib = _import_dlib()
                path = dlib_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"
                FaceEmbedder._model = dlib.face_recognition_model_v1(str(path))
        self.model = FaceEmbedder._model

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), np.float32)
        batch = [np.ascontiguousarray(c, np.uint8) for c in chips]
        return np.asarray(self.model.compute_face_descriptor(batch), np.float32).reshape(-1, 128)


class ChipSamples:
    """At most ``keep`` chips of one track, spread over its frames: every ``every``-th face is
    cut, and when there are too many every other one is dropped, so the kept ones stay evenly
    spaced however long the track. Descriptors are computed on first use and cached."""

    def __init__(self, keep: int = 6, every: int = 5):
        self.keep, self.every = keep, every
        self.chips: list[np.ndarray] = []
        self._seen = 0
        self._stride = 1
        self._flat = 0  # chips not kept: too dark or flat
        self._descriptor: np.ndarray | None = None

    def add(self, frame: np.ndarray, points: np.ndarray) -> None:
        take = self._seen % (self.every * self._stride) == 0
        self._seen += 1
        if not take:
            return
        try:
            chip = face_chip(frame, points)
        except ValueError:
            return
        if contrast(chip) < MIN_CONTRAST:
            self._flat += 1
            return
        self.chips.append(chip)
        self._descriptor = None
        if len(self.chips) > self.keep:
            self.chips = self.chips[::2]
            self._stride *= 2

    def descriptor(self, embedder: FaceEmbedder) -> np.ndarray | None:
        """The mean descriptor of the kept chips; None when most of the face's chips were too
        dark or flat to keep (a face mostly in the dark is not told apart by its bright moments)."""
        if len(self.chips) < self._flat or not self.chips:
            return None
        if self._descriptor is None:
            self._descriptor = embedder.embed(self.chips).mean(0)
        return self._descriptor


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
