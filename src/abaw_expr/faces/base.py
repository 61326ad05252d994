"""What every face detector gives: boxes (:class:`Detection`) and, for one box, the five ArcFace
points; the protocol a back end follows (:class:`FaceDetector`) and box overlap (:func:`iou`).
The back ends are in their own modules; :mod:`.detectors` names and builds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


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
