"""Synthetic videos for tests, benchmarks and the demo: the sample generator's faces drawn onto a
larger, moving background, written with OpenCV, with the ground truth of every frame.

The sample faces are drawn in the ArcFace template's geometry, so where a face is placed with the
similarity ``matrix`` (112x112 crop -> frame), the true position of its five alignment points in
the frame is ``matrix`` applied to the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.faces.align import ARCFACE_TEMPLATE
from abaw_expr.synthetic.sample import FaceParams, Identity, Nuisance, render_face
from abaw_expr.tasks import NUM_CLASSES
from abaw_expr.writers import atomic_write


@dataclass
class SyntheticTruth:
    """Per frame (index 0 = frame 1): whether the subject is in view, the true frame positions
    of its five alignment points, its expression, and whether a second face is in view."""

    visible: np.ndarray  # (n,) bool
    points: np.ndarray  # (n, 5, 2) float32, NaN where not visible
    labels: np.ndarray  # (n,) int64, the subject's expression (-1 where not visible)
    other_visible: np.ndarray  # (n,) bool
    fps: float


def _face_mask() -> np.ndarray:
    """Soft elliptical matte of head and hair in the 112 crop: no square edges in the frame."""
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    r = np.sqrt(((xx - 56) / 50) ** 2 + ((yy - 60) / 56) ** 2)
    return np.clip((1.0 - r) * 12, 0, 1)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random texture twice the frame's width, slid sideways to make it move."""
    coarse = rng.uniform(40, 210, (6, 12, 3)).astype(np.float32)
    big = cv2.resize(coarse, (2 * width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 255)


def _expression_schedule(rng: np.random.Generator, n: int, segment: int) -> np.ndarray:
    labels = np.zeros(n, np.int64)
    for start in range(0, n, segment):
        labels[start : start + segment] = rng.integers(NUM_CLASSES)
    return labels


def write_synthetic_video(
    path: Path | str,
    num_frames: int = 90,
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    face_px: float = 180.0,
    absent: tuple[tuple[int, int], ...] = (),
    second_face: bool = False,
    no_face: bool = False,
    segment: int = 15,
    seed: int = 0,
    fourcc: str = "mp4v",
) -> SyntheticTruth:
    """Write a video whose subject (the sample's cartoon face, ``face_px`` wide) drifts across a
    moving background while its expression changes every ``segment`` frames.

    ``absent``: 1-based inclusive frame ranges where the subject is out of view.
    ``second_face``: a smaller second person stays in view the whole time.
    ``no_face``: nobody at all.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    identity, other = Identity.random(rng), Identity.random(rng)
    background = _background(rng, width, height)
    matte = _face_mask()[..., None]
    labels = _expression_schedule(rng, num_frames, segment)
    visible = np.ones(num_frames, bool) if not no_face else np.zeros(num_frames, bool)
    for first, last in absent:
        visible[first - 1 : last] = False
    points = np.full((num_frames, 5, 2), np.nan, np.float32)
    scale = face_px / 112.0

    def draw(i: int) -> np.ndarray:
        shift = int(i * width / max(num_frames, 1) * 0.5)
        frame = background[:, shift : shift + width].copy()
        if second_face:
            bystander = render_face(FaceParams(), other, rng, nuisance=Nuisance())
            _paste(
                frame, bystander, matte, _placement(0.5 * scale, 0.0, width * 0.14, height * 0.3)
            )
        if visible[i]:
            t = i / max(num_frames - 1, 1)
            cx = width * (0.45 + 0.15 * np.sin(2 * np.pi * t))
            cy = height * (0.5 + 0.06 * np.cos(2 * np.pi * t))
            angle = 6.0 * np.sin(4 * np.pi * t)
            matrix = _placement(scale * (1 + 0.1 * np.sin(2 * np.pi * t)), angle, cx, cy)
            params = FaceParams(*identity.apex(int(labels[i])).tolist())
            face = render_face(params, identity, rng, nuisance=Nuisance(noise=2.0))
            _paste(frame, face, matte, matrix)
            points[i] = ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2]
        return frame.astype(np.uint8)

    _write_video(path, draw, num_frames, fps, (width, height), fourcc)
    labels = np.where(visible, labels, -1)
    other_visible = np.full(num_frames, second_face)
    return SyntheticTruth(visible, points, labels, other_visible, fps)


def _placement(scale: float, angle: float, cx: float, cy: float) -> np.ndarray:
    """The 2x3 matrix that puts the crop's centre (56, 56) at (cx, cy), scaled and turned."""
    matrix = cv2.getRotationMatrix2D((56.0, 56.0), angle, scale)
    matrix[:, 2] += (cx - 56.0, cy - 56.0)
    return matrix


def _paste(frame: np.ndarray, face: np.ndarray, matte: np.ndarray, matrix: np.ndarray) -> None:
    height, width = frame.shape[:2]
    warped = cv2.warpAffine(face.astype(np.float32), matrix, (width, height))
    alpha = cv2.warpAffine(matte, matrix, (width, height))[..., None]
    frame *= 1 - alpha
    frame += alpha * warped


@dataclass
class Walker:
    """A person for :func:`write_people_video`: in view from ``enter`` to ``leave`` (1-based,
    inclusive), moving in a straight line from ``start`` to ``end`` (frame pixels, face centre),
    ``face_px`` wide, with one ``expression`` the whole time."""

    start: tuple[float, float]
    end: tuple[float, float]
    expression: int
    face_px: float = 150.0
    enter: int = 1
    leave: int | None = None


def write_people_video(
    path: Path | str,
    num_frames: int,
    people: list[Walker],
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    seed: int = 0,
    fourcc: str = "mp4v",
) -> list[SyntheticTruth]:
    """Several of the sample's faces, each walking its own straight path with its own expression;
    later people in the list are drawn in front (so paths that cross hide the earlier one).
    Returns one truth per person, in the list's order."""
    rng = np.random.default_rng(seed)
    width, height = size
    identities = [Identity.random(rng) for _ in people]
    background = _background(rng, width, height)
    matte = _face_mask()[..., None]
    truths = []
    for person in people:
        visible = np.zeros(num_frames, bool)
        visible[person.enter - 1 : person.leave or num_frames] = True
        labels = np.where(visible, person.expression, -1).astype(np.int64)
        points = np.full((num_frames, 5, 2), np.nan, np.float32)
        truths.append(SyntheticTruth(visible, points, labels, np.zeros(num_frames, bool), fps))
    for truth in truths:
        truth.other_visible = np.any([t.visible for t in truths if t is not truth], axis=0)

    def draw(i: int) -> np.ndarray:
        shift = int(i * width / max(num_frames, 1) * 0.5)
        frame = background[:, shift : shift + width].copy()
        for person, identity, truth in zip(people, identities, truths, strict=True):
            if not truth.visible[i]:
                continue
            first, last = person.enter - 1, (person.leave or num_frames) - 1
            t = (i - first) / max(last - first, 1)
            cx = person.start[0] + t * (person.end[0] - person.start[0])
            cy = person.start[1] + t * (person.end[1] - person.start[1])
            matrix = _placement(person.face_px / 112.0, 0.0, cx, cy)
            params = FaceParams(*identity.apex(person.expression).tolist())
            face = render_face(params, identity, rng, nuisance=Nuisance(noise=2.0))
            _paste(frame, face, matte, matrix)
            truth.points[i] = ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2]
        return frame.astype(np.uint8)

    _write_video(path, draw, num_frames, fps, (width, height), fourcc)
    return truths


def _write_video(path, draw, num_frames: int, fps: float, size: tuple[int, int], fourcc: str):
    """``draw(i)`` (RGB) for i = 0 .. num_frames - 1, in order, into ``path`` (atomically)."""

    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path} with codec {fourcc}")
        try:
            for i in range(num_frames):
                writer.write(cv2.cvtColor(draw(i), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()

    atomic_write(path, write, suffix=f".tmp{Path(path).suffix}")


@dataclass
class PhotoFace:
    """A real person for :func:`write_shots_video`: the face in ``box`` (x0, y0, x1, y1) of an
    RGB ``photo``, shown ``face_px`` wide with its centre at ``centre`` (frame pixels), moving
    ``drift`` pixels a frame."""

    photo: np.ndarray
    box: tuple[float, float, float, float]
    centre: tuple[float, float]
    face_px: float = 120.0
    drift: tuple[float, float] = (0.0, 0.0)
    during: tuple[int, int] | None = None  # in view for these frames of its shot (end excluded)


def write_shots_video(
    path: Path | str,
    shots: list[tuple[int, list[PhotoFace]]],
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    seed: int = 0,
    fourcc: str = "mp4v",
) -> list[int]:
    """A video cut from shots: each ``(frames, faces)`` on a background of its own (a cut
    between shots, as an editor's), with those real faces pasted on it, each under a soft oval
    matte around its face. Returns the 1-based frame each shot begins at."""
    rng = np.random.default_rng(seed)
    width, height = size
    backgrounds = [_background(rng, width, height) for _ in shots]
    starts = list(np.cumsum([0] + [n for n, _ in shots[:-1]]) + 1)
    shot_of = np.repeat(np.arange(len(shots)), [n for n, _ in shots])

    def draw(i: int) -> np.ndarray:
        k = int(shot_of[i])
        step = i - (starts[k] - 1)
        frame = backgrounds[k][:, step : step + width].copy()
        for face in shots[k][1]:
            if face.during is not None and not face.during[0] <= step < face.during[1]:
                continue
            x0, y0, x1, y1 = face.box
            side = 1.8 * max(x1 - x0, y1 - y0)  # the head with some hair, square
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            scale = face.face_px / (x1 - x0)
            matrix = np.float32([[scale, 0, 0], [0, scale, 0]])
            target = (face.centre[0] + step * face.drift[0], face.centre[1] + step * face.drift[1])
            matrix[:, 2] = (target[0] - scale * cx, target[1] - scale * cy)
            yy, xx = np.mgrid[0 : face.photo.shape[0], 0 : face.photo.shape[1]].astype(np.float32)
            r = np.hypot((xx - cx) / (0.5 * side * 0.8), (yy - cy) / (0.5 * side))
            matte = np.clip((1.0 - r) * 8, 0, 1)[..., None]
            _paste(frame, face.photo.astype(np.float32), matte, matrix)
        return frame.astype(np.uint8)

    _write_video(path, draw, len(shot_of), fps, (width, height), fourcc)
    return [int(s) for s in starts]
