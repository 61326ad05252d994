"""Alignment of a face to the 112x112 ArcFace template, the geometry of Aff-Wild2's
``cropped_aligned`` frames: a similarity transform (rotation, uniform scale, shift) that takes
the five landmarks closest to the template points, then a bilinear warp with black borders."""

from __future__ import annotations

import cv2
import numpy as np

# insightface's arcface_dst: left eye, right eye, nose tip, left and right mouth corner, in a
# 112x112 crop (left as seen in the image).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)


def similarity_to_template(points: np.ndarray, size: int = 112) -> np.ndarray:
    """The 2x3 similarity matrix from frame pixels to a ``size`` crop, fitted to five points.

    Least median of squares, as insightface's own alignment does: one bad landmark (a mouth
    corner under a hand) does not drag the whole face.
    """
    template = ARCFACE_TEMPLATE * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(points, np.float32), template, method=cv2.LMEDS
    )
    if matrix is None:  # degenerate landmarks (all on one line): no usable face
        raise ValueError("landmarks too degenerate to fit a similarity transform")
    return matrix.astype(np.float32)


def align_face(frame: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """The (size, size, 3) aligned crop of the face whose five landmarks are ``points``."""
    matrix = similarity_to_template(points, size)
    return cv2.warpAffine(
        frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
