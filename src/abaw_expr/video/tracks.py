"""One pass over a video: decode, follow the faces, align them, hand each crop on.

Both ``preprocess`` (crops to JPEG files) and video ``predict`` (crops to the backbone) are this
pass with a different ``on_face``. It also times its stages, for the benchmarks.

Two modes (``FaceOptions.faces``): ``one`` follows one subject (:func:`track_video`); ``all``
follows every face with a track of its own (:func:`track_people`), ending every track at a
shot cut (:mod:`.shots`), then joins the tracks of one person that a cut or an absence cut
apart, by appearance (:func:`link_tracks`, :mod:`abaw_expr.faces.identity`), drops tracks too
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
from abaw_expr.faces.identity import (
    SAME_PERSON_DISTANCE,
    SAME_PLACE_DISTANCE,
    ChipSamples,
    FaceEmbedder,
    distance,
    mixed_at,
)
from abaw_expr.faces.tracking import NONE, OTHER, SUBJECT
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
    by :func:`link_tracks`), left to right for two people side by side, else in order of
    appearance."""
    info = probe_video(path)
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
    seconds = {"decode": 0.0, "faces": 0.0, "consumer": 0.0}
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
    t1 = time.perf_counter()
    embedder: list[FaceEmbedder] = []  # loaded only if a join is to be decided

    def describe(tid: int) -> np.ndarray | None:
        if tid not in samples:
            return None
        if not embedder:
            embedder.append(FaceEmbedder())
        return samples[tid].descriptor(embedder[0])

    soon = max(round(2 * (info.fps or 25.0)), 1)  # two seconds
    origin = split_mixed_tracks(seen, samples, describe, options.min_track, embedder)
    people, decisions = link_tracks(seen, options.min_track, cuts, describe, soon)
    note_splits(decisions, origin)
    seconds["identity"] = time.perf_counter() - t1
    in_view = [[i for i, faces in enumerate(seen) if any(t in faces for t in p)] for p in people]
    boxes_of = [[seen[i][t][0] for i, faces in enumerate(seen) for t in p if t in faces]
                for p in people]  # fmt: skip
    names = person_names(boxes_of, in_view)
    result = []
    # the ids the crops were handed on under (on_face): a split piece's are its track's
    raw_ids = [sorted({origin[t][0] if t in origin else t for t in p}) for p in people]
    for person, track, raw in zip(people, names, raw_ids, strict=True):
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
        faces_of = VideoFaces(
            info, np.asarray(times, np.float64), status, boxes, points, others, seconds, track,
            [c + 1 for c in cuts], [decisions[t] for t in person],
        )  # fmt: skip
        result.append((faces_of, raw))
    if not result:  # nobody: one all-empty record under the video's own name
        n = len(seen)
        others = [[list(map(float, b)) for b, _ in f.values()] for f in seen]
        status = np.array([STATUS_CODES[OTHER] if o else STATUS_CODES[NONE] for o in others])
        empty = VideoFaces(
            info,
            np.asarray(times, np.float64),
            status.astype(np.uint8).reshape(n),
            np.full((n, 4), np.nan, np.float32),
            np.full((n, 5, 2), np.nan, np.float32),
            others,
            seconds,
            cuts=[c + 1 for c in cuts],
        )
        result.append((empty, []))
    return result


def split_mixed_tracks(
    seen: list[dict[int, tuple]],
    samples: dict[int, ChipSamples],
    describe: Callable[[int], np.ndarray | None],
    min_track: int,
    embedder: list,
    limit: float = SAME_PLACE_DISTANCE,
) -> dict[int, tuple[int, int, float]]:
    """Tracks whose faces change person part-way (in a crowd the tracker can pass from one
    face to another that steps in front of it) cut in two: the frames from the change on go to
    a new track id, in ``seen`` and ``samples``. The change is found between two chips whose
    runs look like two people (:func:`abaw_expr.faces.identity.mixed_at`, at dlib's own 0.6),
    at the frame between them where the box jumps most. Returns new id -> (the track it was cut
    from, its first frame, the distance)."""
    spans: dict[int, list[int]] = {}
    for i, faces in enumerate(seen):
        for tid in faces:
            spans.setdefault(tid, []).append(i)
    origin: dict[int, tuple[int, int, float]] = {}
    next_id = max(spans, default=0) + 1
    for tid, frames in sorted(spans.items()):
        chips = samples.get(tid)
        if len(frames) < 2 * min_track or chips is None or len(chips.chips) < 4:
            continue
        describe(tid)  # loads the model, computes the chips' descriptors
        each = chips.descriptors(embedder[0]) if embedder else None
        found = None if each is None else mixed_at(each, limit)
        if found is None:
            continue
        k, gap = found
        between = [i for i in frames if chips.frames[k - 1] < i <= chips.frames[k]]
        cut = max(between, key=lambda i: _jump(seen, tid, i))
        for i in frames:
            if i >= cut:
                seen[i][next_id] = seen[i].pop(tid)
        samples[tid], samples[next_id] = chips.split(k)
        origin[next_id] = (origin[tid][0] if tid in origin else tid, cut, gap)
        next_id += 1
    return origin


def note_splits(decisions: dict[int, dict], origin: dict[int, tuple[int, int, float]]) -> None:
    """Adds to each kept piece cut from a track (:func:`split_mixed_tracks`) where it came from."""
    for piece, (track, frame, gap) in origin.items():
        if piece not in decisions:  # a part too short to be a person was dropped
            continue
        decisions[piece]["split_from"] = track
        decisions[piece]["why"] = (
            f"split from track {track} at frame {frame + 1}: its faces before and after lie "
            f"{gap:.2f} apart (>= {SAME_PLACE_DISTANCE}), two people; then "
            + decisions[piece]["why"]
        )


def _jump(seen: list[dict[int, tuple]], tid: int, i: int) -> float:
    """How much track ``tid``'s box changes from the frame before ``i`` (where it was seen) to
    ``i``: the centre's shift and the change of size, in box widths."""
    before = next((seen[j][tid][0] for j in range(i - 1, -1, -1) if tid in seen[j]), None)
    if before is None:
        return 0.0
    box = seen[i][tid][0]
    width = before[2] - before[0]
    shift = np.hypot(*np.subtract(_centre(box), _centre(before))) / width
    return float(shift + abs(np.log((box[2] - box[0]) / width)))


def link_tracks(
    seen: list[dict[int, tuple]],
    min_track: int = 10,
    cuts: list[int] = (),
    describe: Callable[[int], np.ndarray | None] | None = None,
    soon: int = 50,
    threshold: float = SAME_PERSON_DISTANCE,
    same_place_threshold: float = SAME_PLACE_DISTANCE,
) -> tuple[list[list[int]], dict[int, dict]]:
    """People as lists of raw track ids, and for every kept track a record of how it was placed.

    Tracks with fewer than ``min_track`` face frames are dropped. A track can continue only a
    person who is out of view all through it (no two tracks of one person share a frame), and
    only one who looks like it: the distance between its descriptor and the nearest of that
    person's tracks' (``describe(track id)``, see :mod:`abaw_expr.faces.identity`; None for a
    face too dark or flat to tell) must be under ``threshold``. A face that comes back where
    the person was lost, in the same shot (``cuts``: 0-based frames that begin a shot) and at
    most ``soon`` frames later (a hand over the face, a turn away) needs less: a distance under
    ``same_place_threshold``, or no descriptor on either side, unless somebody else's face was
    near (two face widths) when it was lost or when it comes back: then it could be theirs. Of
    several such people the one
    that looks most alike is taken, then the nearest in place. Otherwise the track is a new
    person: a stranger who enters where somebody left, or who is at the same place after a
    cut, is not taken for them, and a person who cannot be told apart is split rather than
    joined to somebody else.
    """
    spans: dict[int, list[int]] = {}
    for i, faces in enumerate(seen):
        for tid in faces:
            spans.setdefault(tid, []).append(i)
    kept = sorted((t for t, f in spans.items() if len(f) >= min_track), key=lambda t: spans[t][0])
    cut_frames = np.asarray(sorted(cuts), np.int64)
    people: list[list[int]] = []
    decisions: dict[int, dict] = {}
    for tid in kept:
        start, end = spans[tid][0], spans[tid][-1]
        record: dict = {"id": tid, "first_frame": start + 1, "last_frame": end + 1,
                        "face_frames": len(spans[tid])}  # fmt: skip
        ended = [p for p in people if max(spans[t][-1] for t in p) < start]
        mine = describe(tid) if ended and describe is not None else None
        options = []  # (has no score, score or place, limit, earlier track, person, gap, cuts)
        for person in ended:
            last = max(person, key=lambda t: spans[t][-1])
            gap = start - spans[last][-1]
            between = int(((cut_frames > start - gap) & (cut_frames <= start)).sum())
            lost = spans[last][-1]
            there, here = seen[lost][last][0], seen[start][tid][0]
            width = there[2] - there[0]
            offset = np.hypot(*np.subtract(_centre(here), _centre(there))) / width
            same_place = (
                not between
                and gap <= soon
                and offset <= 1.0
                and not _anybody_near(seen[lost], there, 2 * width, (last,))
                and not _anybody_near(seen[start], here, 2 * width, (tid,))
            )
            limit = same_place_threshold if same_place else threshold
            scored = []
            if mine is not None:
                scored = [(distance(mine, d), t) for t in person if (d := describe(t)) is not None]
            if scored:
                score, like = min(scored)
                options.append((False, score, limit, like, person, gap, between))
            elif same_place:  # nothing to compare: the place decides
                options.append((True, float(offset), None, last, person, gap, between))
        joinable = [o for o in options if o[0] or o[1] < o[2]]
        if joinable:
            by_place, score, limit, like, person, gap, between = min(joinable, key=lambda o: o[:2])
            where = f", {between} shot cut(s) between" if between else " in the same shot"
            if by_place:
                record["why"] = (
                    f"comes back where track {like} was lost {gap} frames before{where}; "
                    "too dark or flat to compare by looks"
                )
            else:
                record["distance"] = round(score, 3)
                record["why"] = (
                    f"looks like track {like} (descriptor distance {score:.2f} < {limit}), "
                    f"last seen {gap} frames before{where}"
                    + (", where it comes back" if limit == same_place_threshold else "")
                )
            record["joined_to"] = person[0]
            person.append(tid)
        else:
            compared = [o for o in options if not o[0]]
            if compared:
                _, score, limit, like = min(compared, key=lambda o: o[1])[:4]
                record["distance"] = round(score, 3)
                record["why"] = (
                    f"a new person: the nearest earlier one out of view (track {like}) is at "
                    f"descriptor distance {score:.2f} >= {limit}"
                )
            elif ended:
                record["why"] = "a new person: its face is too dark or flat to tell who it is"
            else:
                record["why"] = "a new person: no earlier person is out of view all through it"
            people.append([tid])
        decisions[tid] = record
    return people, decisions


def person_names(boxes: list[list], frames: list[list[int]] | None = None) -> list[str]:
    """Suffixes for the people of one video: none for one person; ``left`` / ``right`` for two
    who are side by side (in view together in some frame; by mean horizontal centre, Aff-Wild2's
    convention); ``1``, ``2``, ... otherwise (their order). ``boxes``: each person's face
    boxes (None entries are skipped); ``frames``: the frames each is in view."""
    if len(boxes) == 1:
        return [""]
    together = frames is None or (len(frames) == 2 and bool(set(frames[0]) & set(frames[1])))
    if len(boxes) == 2 and together:
        centres = [
            np.mean([(b[0] + b[2]) / 2 for b in person if b is not None]) for person in boxes
        ]
        return ["left", "right"] if centres[0] <= centres[1] else ["right", "left"]
    return [str(k + 1) for k in range(len(boxes))]


def _anybody_near(faces: dict[int, tuple], box, radius: float, besides) -> bool:
    """Whether a face other than ``besides`` is within ``radius`` of ``box``'s centre."""
    x, y = _centre(box)
    return any(
        np.hypot(*np.subtract(_centre(other), (x, y))) <= radius
        for t, (other, _) in faces.items()
        if t not in besides
    )


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
