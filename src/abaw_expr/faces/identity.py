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

from abaw_expr.faces.dlib import dlib_model_dir, import_dlib

CHIP_SIZE = 150
# Where dlib.get_face_chip(image, shape68, 150, padding=0.25) puts the five points (eye centres,
# nose tip, mouth corners; left as seen first): the mean over 76 real photos
# (benchmarks/identity.py --template; the spread is 2-5 pixels).
CHIP_TEMPLATE = np.array(
    [[47.87, 46.96], [100.55, 46.79], [73.68, 75.93], [48.78, 102.85], [99.37, 102.12]],
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
                dlib = import_dlib()
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

    def __init__(self, keep: int = 8, every: int = 5):
        self.keep, self.every = keep, every
        self.chips: list[np.ndarray] = []
        self.frames: list[int] = []  # the frame of each chip
        self._seen = 0
        self._stride = 1
        self._good = self._flat = 0  # chips cut: kept, and too dark or flat to keep
        self._descriptors: np.ndarray | None = None

    def add(self, frame: np.ndarray, points: np.ndarray, index: int = -1) -> None:
        """Offer the face at ``points`` in ``frame`` (frame number ``index``)."""
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
        self._good += 1
        self.chips.append(chip)
        self.frames.append(index)
        self._descriptors = None
        if len(self.chips) > self.keep:
            self.chips, self.frames = self.chips[::2], self.frames[::2]
            self._stride *= 2

    def descriptors(self, embedder: FaceEmbedder) -> np.ndarray | None:
        """One descriptor per kept chip; None when most of the face's chips were too dark or
        flat to keep (a face mostly in the dark is not told apart by its bright moments)."""
        if not self.chips or self._good < self._flat:
            return None
        if self._descriptors is None:
            self._descriptors = embedder.embed(self.chips)
        return self._descriptors

    def descriptor(self, embedder: FaceEmbedder) -> np.ndarray | None:
        """The mean of :meth:`descriptors`."""
        each = self.descriptors(embedder)
        return None if each is None else each.mean(0)

    def split(self, k: int) -> tuple[ChipSamples, ChipSamples]:
        """The samples before chip ``k`` and from it on (descriptors kept)."""
        parts = []
        for part in (slice(0, k), slice(k, None)):
            piece = ChipSamples(self.keep, self.every)
            piece.chips, piece.frames = self.chips[part], self.frames[part]
            piece._good = len(piece.chips)
            if self._descriptors is not None:
                piece._descriptors = self._descriptors[part]
            parts.append(piece)
        return parts[0], parts[1]


def mixed_at(descriptors: np.ndarray, limit: float) -> tuple[int, float] | None:
    """Where one track's chips change person: the chip ``k`` that splits them into two runs
    whose mean descriptors lie furthest apart, and that distance, if it is ``limit`` or more.
    Each run has two chips at least: one odd chip (a blurred frame, a turn) is no other person."""
    best = None
    for k in range(2, len(descriptors) - 1):
        gap = distance(descriptors[:k].mean(0), descriptors[k:].mean(0))
        if best is None or gap > best[1]:
            best = (k, gap)
    return best if best is not None and best[1] >= limit else None


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
