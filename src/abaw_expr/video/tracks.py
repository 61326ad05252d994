"""One pass over a video: decode, follow the subject's face, align it, hand each crop on.

Both ``preprocess`` (crops to JPEG files) and video ``predict`` (crops to the backbone) are this
pass with a different ``on_face``. It also times its stages, for the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..faces import SubjectTracker, align_face, build_detector
from ..faces.tracking import NONE, OTHER, SUBJECT
from .reader import VideoInfo, probe_video, read_frames

STATUS_CODES = {NONE: 0, SUBJECT: 1, OTHER: 2}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


@dataclass
class FaceOptions:
    """How faces are found: see :mod:`abaw_expr.faces`."""

    detector: str = "dlib-hog"
    detect_every: int = 10  # full-frame search every N frames (and whenever the face is lost)
    detect_width: int = 640  # full-frame search on the frame scaled down to this width
    upsample: int = 0  # detector upsampling: 1 finds faces down to ~40 px, 4x slower
    size: int = 112  # the aligned crop, as Aff-Wild2's cropped_aligned


@dataclass
class VideoFaces:
    """The outcome of one pass: per frame (index 0 = frame 1) its time, status, subject box and
    landmarks, plus the seconds spent per stage."""

    info: VideoInfo
    time_s: np.ndarray  # (n,) float64
    status: np.ndarray  # (n,) uint8, STATUS_CODES
    boxes: np.ndarray  # (n, 4) float32, NaN where there is no subject
    points: np.ndarray  # (n, 5, 2) float32, NaN where there is no subject
    others: list[list[list[float]]]  # per frame, the boxes of the other faces
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.status)

    @property
    def has_face(self) -> np.ndarray:
        return self.status == STATUS_CODES[SUBJECT]

    def summary(self, options: FaceOptions) -> dict:
        """A JSON-ready record: frame count, fps and every frame's boxes."""
        frames = []
        for i in range(self.num_frames):
            record: dict = {
                "frame": i + 1,
                "time_s": round(float(self.time_s[i]), 4),
                "status": STATUS_NAMES[int(self.status[i])],
            }
            if self.has_face[i]:
                record["box"] = [round(float(v), 1) for v in self.boxes[i]]
                record["landmarks"] = np.round(self.points[i], 1).tolist()
            if self.others[i]:
                record["other_boxes"] = [[round(v, 1) for v in box] for box in self.others[i]]
            frames.append(record)
        return {
            "video": self.info.name,
            "source": str(self.info.path),
            "width": self.info.width,
            "height": self.info.height,
            "fps": self.info.fps,
            "frames": self.num_frames,
            "declared_frames": self.info.declared_frames,
            "face_frames": int(self.has_face.sum()),
            "other_face_frames": int((self.status == STATUS_CODES[OTHER]).sum()),
            "detector": options.detector,
            "detect_every": options.detect_every,
            "per_frame": frames,
        }


def track_video(
    path: Path | str,
    options: FaceOptions,
    on_face: Callable[[int, np.ndarray], None],
    progress: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
) -> VideoFaces:
    """Follow the subject through ``path``; ``on_face(frame_number, crop)`` gets each aligned
    RGB crop (1-based frame number, ``options.size`` square) as soon as it is made, and
    ``on_frame(frame_number, declared_frames)`` is called after every frame (progress)."""
    info = probe_video(path)
    tracker = SubjectTracker(
        build_detector(options.detector, options.upsample),
        detect_every=options.detect_every,
        detect_width=options.detect_width,
    )
    times, status, boxes, points, others = [], [], [], [], []
    seconds = {"decode": 0.0, "faces": 0.0, "consumer": 0.0}
    frames = read_frames(path)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.declared_frames or None, desc=info.name, unit="frame", leave=False)
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            t1 = time.perf_counter()
            seconds["decode"] += t1 - t0
            if frame is None:
                break
            seen = tracker(frame.rgb)
            crop = None
            if seen.status == SUBJECT:
                try:
                    crop = align_face(frame.rgb, seen.points, options.size)
                except ValueError:  # degenerate landmarks: no usable face in this frame
                    seen.status = OTHER if seen.others else NONE
            t2 = time.perf_counter()
            seconds["faces"] += t2 - t1
            times.append(frame.time_s)
            status.append(STATUS_CODES[seen.status])
            have = crop is not None
            boxes.append(seen.box if have else (np.nan,) * 4)
            points.append(seen.points if have else np.full((5, 2), np.nan, np.float32))
            others.append([list(map(float, box)) for box in seen.others])
            if have:
                on_face(frame.number, crop)
            seconds["consumer"] += time.perf_counter() - t2
            if bar is not None:
                bar.update()
            if on_frame is not None:
                on_frame(frame.number, info.declared_frames)
    finally:
        if bar is not None:
            bar.close()
    return VideoFaces(
        info,
        np.asarray(times, np.float64),
        np.asarray(status, np.uint8),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(points, np.float32).reshape(-1, 5, 2),
        others,
        seconds,
    )
