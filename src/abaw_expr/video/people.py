"""From face tracks to people: the tracks of one video (:func:`.tracks.track_people`) cut
where their face changes person (:func:`split_mixed_tracks`), joined where one person's face
comes back after a shot cut or an absence (:func:`link_tracks`, by appearance:
:mod:`abaw_expr.faces.identity`), and named as Aff-Wild2 names the people of one video
(:func:`person_names`).

``seen`` is, per frame (0-based), the faces found in it: raw track id -> (box, points).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from abaw_expr.faces.identity import (
    SAME_PERSON_DISTANCE,
    SAME_PLACE_DISTANCE,
    ChipSamples,
    FaceEmbedder,
    distance,
    mixed_at,
)


def identify_people(
    seen: list[dict[int, tuple]],
    samples: dict[int, ChipSamples],
    cuts: list[int],
    min_track: int,
    fps: float | None,
) -> tuple[list[list[int]], dict[int, dict], dict[int, tuple[int, int, float]]]:
    """The people of one video: mixed tracks split (:func:`split_mixed_tracks`, which changes
    ``seen`` and ``samples``), then joined (:func:`link_tracks`), the face descriptor loaded
    only if a join or a split is to be decided. Returns the people (lists of track ids), how
    each track was placed, and the split pieces' origins."""
    embedder: list[FaceEmbedder] = []  # loaded only if a join is to be decided

    def describe(tid: int) -> np.ndarray | None:
        if tid not in samples:
            return None
        if not embedder:
            embedder.append(FaceEmbedder())
        return samples[tid].descriptor(embedder[0])

    soon = max(round(2 * (fps or 25.0)), 1)  # two seconds
    origin = split_mixed_tracks(seen, samples, describe, min_track, embedder)
    people, decisions = link_tracks(seen, min_track, cuts, describe, soon)
    note_splits(decisions, origin)
    return people, decisions, origin


def name_people(seen: list[dict[int, tuple]], people: list[list[int]]) -> list[str]:
    """:func:`person_names` for people given as lists of track ids."""
    in_view = [[i for i, faces in enumerate(seen) if any(t in faces for t in p)] for p in people]
    boxes_of = [[seen[i][t][0] for i, faces in enumerate(seen) for t in p if t in faces]
                for p in people]  # fmt: skip
    return person_names(boxes_of, in_view)


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
    spans = _spans(seen)
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


def _spans(seen: list[dict[int, tuple]]) -> dict[int, list[int]]:
    """Track id -> the frames it is seen in, in order."""
    spans: dict[int, list[int]] = {}
    for i, faces in enumerate(seen):
        for tid in faces:
            spans.setdefault(tid, []).append(i)
    return spans


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
    spans = _spans(seen)
    kept = sorted((t for t, f in spans.items() if len(f) >= min_track), key=lambda t: spans[t][0])
    linker = Linker(
        seen, spans, np.asarray(sorted(cuts), np.int64), describe, soon, threshold,
        same_place_threshold,
    )  # fmt: skip
    people: list[list[int]] = []
    decisions: dict[int, dict] = {}
    for tid in kept:
        start, end = spans[tid][0], spans[tid][-1]
        record: dict = {"id": tid, "first_frame": start + 1, "last_frame": end + 1,
                        "face_frames": len(spans[tid])}  # fmt: skip
        linker.place(tid, people, record)
        decisions[tid] = record
    return people, decisions


@dataclass
class Linker:
    """What :func:`link_tracks` weighs a track against: the people out of view all through it."""

    seen: list[dict[int, tuple]]
    spans: dict[int, list[int]]
    cut_frames: np.ndarray  # 0-based frames that begin a shot, sorted
    describe: Callable[[int], np.ndarray | None] | None
    soon: int
    threshold: float
    same_place_threshold: float

    def place(self, tid: int, people: list[list[int]], record: dict) -> list[int]:
        """Track ``tid`` joined to the person of ``people`` it continues, or appended as a new
        one, ``record`` saying why; returns its person."""
        start = self.spans[tid][0]
        ended = [p for p in people if max(self.spans[t][-1] for t in p) < start]
        options = self.options(tid, ended)
        joinable = [o for o in options if o[0] or o[1] < o[2]]
        if joinable:
            person = note_join(
                record, min(joinable, key=lambda o: o[:2]), self.same_place_threshold
            )
            person.append(tid)
        else:
            note_new_person(record, options, ended)
            person = [tid]
            people.append(person)
        return person

    def options(self, tid: int, ended: list[list[int]]) -> list[tuple]:
        """Per person of ``ended`` that ``tid`` could continue: (has no score, score or place,
        limit, earlier track, person, gap, cuts); a person who can be compared neither by looks
        nor by place gives none."""
        mine = self.describe(tid) if ended and self.describe is not None else None
        options = []
        for person in ended:
            option = self.option(tid, person, mine)
            if option is not None:
                options.append(option)
        return options

    def option(self, tid: int, person: list[int], mine: np.ndarray | None) -> tuple | None:
        spans, seen = self.spans, self.seen
        start = spans[tid][0]
        last = max(person, key=lambda t: spans[t][-1])
        gap = start - spans[last][-1]
        between = int(((self.cut_frames > start - gap) & (self.cut_frames <= start)).sum())
        lost = spans[last][-1]
        there, here = seen[lost][last][0], seen[start][tid][0]
        width = there[2] - there[0]
        offset = np.hypot(*np.subtract(_centre(here), _centre(there))) / width
        same_place = (
            not between
            and gap <= self.soon
            and offset <= 1.0
            and not _anybody_near(seen[lost], there, 2 * width, (last,))
            and not _anybody_near(seen[start], here, 2 * width, (tid,))
        )
        limit = self.same_place_threshold if same_place else self.threshold
        scored = []
        if mine is not None:
            describe = self.describe
            scored = [(distance(mine, d), t) for t in person if (d := describe(t)) is not None]
        if scored:
            score, like = min(scored)
            return (False, score, limit, like, person, gap, between)
        if same_place:  # nothing to compare: the place decides
            return (True, float(offset), None, last, person, gap, between)
        return None


def note_join(record: dict, option: tuple, same_place_threshold: float) -> list[int]:
    """Says in ``record`` why its track joins the person of ``option``; returns that person."""
    by_place, score, limit, like, person, gap, between = option
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
    return person


def note_new_person(record: dict, options: list[tuple], ended: list[list[int]]) -> None:
    """Says in ``record`` why its track is a new person."""
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
