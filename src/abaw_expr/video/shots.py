"""Shot cuts, found from the frames themselves: a frame whose colours differ from the previous
frame's by more than ``threshold`` begins a new shot.

The measure is PySceneDetect's content detector (mean absolute difference of hue, saturation
and value between consecutive frames, each channel 0-255 or 0-179, averaged; threshold 27, at
most one cut per ``min_shot`` frames), computed here on the frame scaled to 160 pixels wide.
It is not imported from PySceneDetect because that package requires ``opencv-python``, whose
``cv2`` would clash with the ``opencv-python-headless`` this project installs, and its API
changed between 0.6 and 0.7; the measure itself is a few lines. On the real clip with three cuts
it was measured on (benchmarks/identity.py) the cuts score 48 to 55, every other frame at most
20, and a crowd walking towards the camera at most 6.
"""

from __future__ import annotations

import cv2
import numpy as np

CUT_THRESHOLD = 27.0
WIDTH = 160


def frame_difference(previous: np.ndarray, current: np.ndarray) -> float:
    """PySceneDetect's content score between two HSV frames of the same size."""
    delta = np.abs(current.astype(np.int16) - previous.astype(np.int16))
    return float(delta.reshape(-1, 3).mean(0).mean())


class ShotCuts:
    """Feed RGB frames in order; each call says whether that frame begins a new shot (never the
    first frame)."""

    def __init__(self, threshold: float = CUT_THRESHOLD, min_shot: int = 15):
        self.threshold, self.min_shot = threshold, min_shot
        self._previous: np.ndarray | None = None
        self._since_cut = min_shot  # the video's start is no cut: the first shot may be short

    def __call__(self, frame: np.ndarray) -> bool:
        height, width = frame.shape[:2]
        size = (WIDTH, max(1, round(height * WIDTH / width)))
        hsv = cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
        previous, self._previous = self._previous, hsv
        self._since_cut += 1
        if previous is None or previous.shape != hsv.shape:
            return False
        if self._since_cut < self.min_shot or frame_difference(previous, hsv) < self.threshold:
            return False
        self._since_cut = 0
        return True
