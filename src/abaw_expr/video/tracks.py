"""One pass over a video: decode, follow the faces, align them, hand each crop on.

Both ``preprocess`` (crops to JPEG files) and video ``predict`` (crops to the backbone) are this
pass with a different ``on_face``. It also times its stages, for the benchmarks.

Two modes (``FaceOptions.faces``): ``one`` follows one subject (:func:`track_video`); ``all``
follows every face with a track of its own (:func:`track_people`), ending every track at a
shot cut (:mod:`.shots`), then joins the tracks of one person that a cut or an absence cut
apart, by appearance (:mod:`.people`, :mod:`abaw_expr.faces.identity`), drops tracks too
short to be a person, and names them as Aff-Wild2 names the people of one video: ``<video>``
for one, ``<video>_left`` / ``<video>_right`` for two side by side (by mean horizontal
position), ``<video>_1``, ``_2``, ... otherwise (in order of first appearance).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abaw_expr.faces import MultiFaceTracker, SubjectTracker, align_face, build_detector
from abaw_expr.faces.detectors import default_detector
from abaw_expr.faces.identity import ChipSamples
from abaw_expr.faces.tracking import NONE, OTHER, SUBJECT
from abaw_expr.video.people import identify_people, name_people
from abaw_expr.video.reader import Frame, VideoInfo, probe_video, read_frames
from abaw_expr.video.shots import ShotCuts

STATUS_CODES = {NONE: 0, SUBJECT: 1, OTHER: 2}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


@dataclass
class FaceOptions:
    """How faces are found: see :mod:`abaw_expr.faces`."""

    detector: str = "auto"  # "auto" is replaced by what it stands for here (default_detector)
    faces: str = "all"  # "all": a track per person; "one": the subject only
    min_track: int = 10  # with faces="all": a track with fewer face frames is not a person
    detect_every: int = 10  # full-frame search every N frames (and whenever the face is lost)
    detect_width: int = 640  # full-frame search on the frame scaled down to this width
    upsample: int = 0  # detector upsampling: 1 finds faces down to ~40 px, 4x slower
    size: int = 112  # the aligned crop, as Aff-Wild2's cropped_aligned

    def __post_init__(self):
        if self.detector == "auto":  # resolved once, so that outputs name the real back end
            self.detector = default_detector()


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
    track: str = ""  # "" (the one subject), "left", "right", "1", "2", ...
    # faces="all": the frames (1-based) that begin a new shot, and this person's raw tracks,
    # each with how it was joined to them or why it began a new person (link_tracks)
    cuts: list[int] = field(default_factory=list)
    tracks: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The outputs' name: the video's, with the track's suffix when it has one."""
        return f"{self.info.name}_{self.track}" if self.track else self.info.name

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
            "video": self.name,
            "source": str(self.info.path),
            "width": self.info.width,
            "height": self.info.height,
            "fps": self.info.fps,
            "frames": self.num_frames,
            "declared_frames": self.info.declared_frames,
            "face_frames": int(self.has_face.sum()),
            "other_face_frames": int((self.status == STATUS_CODES[OTHER]).sum()),
            "track": self.track,
            "shot_cuts": self.cuts,
            "tracks": self.tracks,
            "detector": options.detector,
            "detect_every": options.detect_every,
            "per_frame": frames,
        }


def progress_bar(name: str, declared_frames: int):
    """A frame counter on the terminal for one video (its declared length, if any, as total)."""
    from tqdm import tqdm

    return tqdm(total=declared_frames or None, desc=name, unit="frame", leave=False)


def _timed_frames(
    path: Path | str,
    info: VideoInfo,
    seconds: dict[str, float],
    progress: bool,
    on_frame: Callable[[int, int], None] | None,
    on_image: Callable[[Frame], None] | None = None,
):
    """The decoded frames of ``path``, decoding time added to ``seconds["decode"]``; before the
    caller's work on a frame: ``on_image(frame)``; after it: the progress bar and
    ``on_frame(frame_number, declared_frames)``."""
    bar = progress_bar(info.name, info.declared_frames) if progress else None
    frames = read_frames(path)
    try:
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            seconds["decode"] += time.perf_counter() - start
            if frame is None:
                return
            if on_image is not None:
                on_image(frame)
            yield frame
            if bar is not None:
                bar.update()
            if on_frame is not None:
                on_frame(frame.number, info.declared_frames)
    finally:
        if bar is not None:
            bar.close()


def track_video(
    path: Path | str,
    options: FaceOptions,
    on_face: Callable[[int, np.ndarray], None],
    progress: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    on_image: Callable[[Frame], None] | None = None,
) -> VideoFaces:
    """Follow the subject through ``path``; ``on_face(frame_number, crop)`` gets each aligned
    RGB crop (1-based frame number, ``options.size`` square) as soon as it is made,
    ``on_image(frame)`` every decoded frame (a preview), and
    ``on_frame(frame_number, declared_frames)`` is called after every frame (progress)."""
    info = probe_video(path)
    tracker = SubjectTracker(
        build_detector(options.detector, options.upsample),
        detect_every=options.detect_every,
        detect_width=options.detect_width,
    )
    times, status, boxes, points, others = [], [], [], [], []
    seconds = {"decode": 0.0, "faces": 0.0, "consumer": 0.0}
    for frame in _timed_frames(path, info, seconds, progress, on_frame, on_image):
        t1 = time.perf_counter()
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
    return VideoFaces(
        info,
        np.asarray(times, np.float64),
        np.asarray(status, np.uint8),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(points, np.float32).reshape(-1, 5, 2),
        others,
        seconds,
    )


FACE_MODES = ("all", "one")


def track_people(
    path: Path | str,
    options: FaceOptions,
    on_face: Callable[[int, int, np.ndarray], None],
    progress: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
    on_image: Callable[[Frame], None] | None = None,
) -> list[tuple[VideoFaces, list[int]]]:
    """Follow every face through ``path``. ``on_face(track_id, frame_number, crop)`` gets each
    aligned crop as soon as it is made, under the tracker's raw track id; the result is, per
    person, their :class:`VideoFaces` and the raw track ids that make up their track (joined
    by :func:`.people.link_tracks`), left to right for two people side by side, else in order
    of appearance."""
    info = probe_video(path)
    seconds = {"decode": 0.0, "faces": 0.0, "consumer": 0.0}
    times, seen, cuts, samples = _follow_faces(
        path, info, options, on_face, seconds, progress, on_frame, on_image
    )
    t1 = time.perf_counter()
    people, decisions, origin = identify_people(seen, samples, cuts, options.min_track, info.fps)
    seconds["identity"] = time.perf_counter() - t1
    names = name_people(seen, people)
    result = []
    # the ids the crops were handed on under (on_face): a split piece's are its track's
    raw_ids = [sorted({origin[t][0] if t in origin else t for t in p}) for p in people]
    for person, track, raw in zip(people, names, raw_ids, strict=True):
        how = [decisions[t] for t in person]
        result.append((_person_faces(info, times, seen, person, seconds, track, cuts, how), raw))
    if not result:  # nobody: one all-empty record under the video's own name
        result.append((_nobody(info, times, seen, seconds, cuts), []))
    return result


def _follow_faces(
    path: Path | str,
    info: VideoInfo,
    options: FaceOptions,
    on_face: Callable[[int, int, np.ndarray], None],
    seconds: dict[str, float],
    progress: bool,
    on_frame: Callable[[int, int], None] | None,
    on_image: Callable[[Frame], None] | None,
) -> tuple[list[float], list[dict[int, tuple]], list[int], dict[int, ChipSamples]]:
    """The pass of :func:`track_people` over the frames: per frame its time and its faces
    (raw track id -> (box, points)), the 0-based frames that begin a new shot, and a few chips
    of each track's face."""
    tracker = MultiFaceTracker(
        build_detector(options.detector, options.upsample),
        detect_every=options.detect_every,
        detect_width=options.detect_width,
    )
    shots = ShotCuts()
    times: list[float] = []
    seen: list[dict[int, tuple]] = []  # per frame: raw id -> (box, points)
    cuts: list[int] = []  # 0-based frames that begin a new shot
    samples: dict[int, ChipSamples] = {}  # raw id -> a few chips of its face
    for frame in _timed_frames(path, info, seconds, progress, on_frame, on_image):
        t1 = time.perf_counter()
        cut = shots(frame.rgb)
        if cut:
            cuts.append(len(seen))
        faces, crops = {}, {}
        for tid, box, points in tracker(frame.rgb, cut=cut):
            try:
                crops[tid] = align_face(frame.rgb, points, options.size)
            except ValueError:  # degenerate landmarks: no usable face
                continue
            faces[tid] = (box, points)
            samples.setdefault(tid, ChipSamples()).add(frame.rgb, points, len(seen))
        t2 = time.perf_counter()
        seconds["faces"] += t2 - t1
        times.append(frame.time_s)
        seen.append(faces)
        for tid, crop in crops.items():
            on_face(tid, frame.number, crop)
        seconds["consumer"] += time.perf_counter() - t2
    return times, seen, cuts, samples


def _person_faces(
    info: VideoInfo,
    times: list[float],
    seen: list[dict[int, tuple]],
    person: list[int],
    seconds: dict[str, float],
    track: str,
    cuts: list[int],
    how: list[dict],
) -> VideoFaces:
    """One person's :class:`VideoFaces`: their face where one of their tracks is in view (the
    first, if several), everybody else's as other faces; ``how``: each of their tracks' record
    of how it was placed (:func:`.people.link_tracks`)."""
    n = len(seen)
    status = np.full(n, STATUS_CODES[NONE], np.uint8)
    boxes = np.full((n, 4), np.nan, np.float32)
    points = np.full((n, 5, 2), np.nan, np.float32)
    others: list[list[list[float]]] = []
    for i, faces in enumerate(seen):
        mine = [t for t in person if t in faces]
        rest = [list(map(float, box)) for t, (box, _) in faces.items() if t not in person]
        if mine:
            status[i] = STATUS_CODES[SUBJECT]
            boxes[i], points[i] = faces[mine[0]][0], faces[mine[0]][1]
        elif rest:
            status[i] = STATUS_CODES[OTHER]
        others.append(rest)
    return VideoFaces(
        info, np.asarray(times, np.float64), status, boxes, points, others, seconds, track,
        [c + 1 for c in cuts], how,
    )  # fmt: skip


def _nobody(
    info: VideoInfo,
    times: list[float],
    seen: list[dict[int, tuple]],
    seconds: dict[str, float],
    cuts: list[int],
) -> VideoFaces:
    """The record of a video without a person: no subject, every face found an other face."""
    n = len(seen)
    others = [[list(map(float, b)) for b, _ in f.values()] for f in seen]
    status = np.array([STATUS_CODES[OTHER] if o else STATUS_CODES[NONE] for o in others])
    return VideoFaces(
        info,
        np.asarray(times, np.float64),
        status.astype(np.uint8).reshape(n),
        np.full((n, 4), np.nan, np.float32),
        np.full((n, 5, 2), np.nan, np.float32),
        others,
        seconds,
        cuts=[c + 1 for c in cuts],
    )
