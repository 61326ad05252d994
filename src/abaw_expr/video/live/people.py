"""Every face of a live source, followed and told apart as frames come: the face pass of
``predict --video`` (:func:`abaw_expr.video.tracks.track_people`) made causal.

The same tracker follows the faces (:class:`~abaw_expr.faces.MultiFaceTracker`), the same
shot-cut measure ends every track at a cut (:class:`~abaw_expr.video.shots.ShotCuts`), and a
track becomes a person by the same rules (:class:`abaw_expr.video.people.Linker`): once it has
``min_track`` faces, it continues the person out of view all through it whom it looks like,
or who was lost where it appears, in the same shot and soon before; else it is a new person.

What a file allows and live does not: a file decides with each track's whole life (all its
chips, its last frame); live decides when the track has ``min_track`` faces, with the chips
cut by then (one every 5th face: two), and never revisits it. A track with fewer faces is no
person, as in a file; its faces get no row. A track that changes person part way (a crowd
passing in front) is not cut in two (:func:`abaw_expr.video.people.split_mixed_tracks` needs
the whole track). People are named ``1``, ``2``, ... in the order they are first told apart:
``left`` / ``right`` needs the whole video.

Memory stays flat: of past frames only those that begin or end a track are kept (their boxes),
and a track's chips are turned into one descriptor (128 numbers) when it ends.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from abaw_expr.faces import MultiFaceTracker, align_face, build_detector
from abaw_expr.faces.identity import (
    SAME_PERSON_DISTANCE,
    SAME_PLACE_DISTANCE,
    ChipSamples,
    FaceEmbedder,
)
from abaw_expr.video.people import Linker
from abaw_expr.video.shots import ShotCuts
from abaw_expr.video.tracks import FaceOptions


@dataclass
class LiveFaces:
    """One frame's faces: raw track id -> (box, five points, aligned crop); the tracks told
    apart in this frame (raw id -> person, 0-based), and those that ended before it."""

    index: int  # 0-based count of the frames seen
    cut: bool
    faces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    placed: dict[int, int] = field(default_factory=dict)
    ended: list[int] = field(default_factory=list)
    person_of: dict[int, int | None] = field(default_factory=dict)  # of each face's track, then


class LivePeople:
    """Feed RGB frames in order: each call gives that frame's :class:`LiveFaces`.
    ``person_of[track]`` is the person of a track told apart, ``decisions[track]`` why."""

    def __init__(self, options: FaceOptions, fps: float = 0.0):
        self.options = options
        self.tracker = MultiFaceTracker(
            build_detector(options.detector, options.upsample),
            detect_every=options.detect_every,
            detect_width=options.detect_width,
        )
        self.shots = ShotCuts()
        self.soon = max(round(2 * (fps or 25.0)), 1)  # two seconds, as for a file
        self.index = -1
        self.cuts: list[int] = []  # 0-based frames that begin a shot
        self.spans: dict[int, list[int]] = {}  # track -> [first frame, last frame]
        self.counts: dict[int, int] = {}  # track -> faces so far
        self.seen: dict[int, dict[int, tuple]] = {}  # only the frames a track begins or ends in
        self.samples: dict[int, ChipSamples] = {}  # live tracks' chips
        self.descriptors: dict[int, Future] = {}  # ended people's tracks: their descriptor
        self.person_of: dict[int, int] = {}
        self.people: list[list[int]] = []
        self.decisions: dict[int, dict] = {}
        self._embedder: FaceEmbedder | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="descriptors")

    def __call__(self, rgb: np.ndarray) -> LiveFaces:
        self.index += 1
        i = self.index
        cut = self.shots(rgb)
        if cut:
            self.cuts.append(i)
        found: dict[int, tuple] = {}
        for tid, box, points in self.tracker(rgb, cut=cut):
            try:
                crop = align_face(rgb, points, self.options.size)
            except ValueError:  # degenerate landmarks: no usable face
                continue
            found[tid] = (box, points, crop)
            self.samples.setdefault(tid, ChipSamples()).add(rgb, points, i)
        frame = LiveFaces(i, cut, found)
        self.seen[i] = {tid: (box, points) for tid, (box, points, _) in found.items()}
        for tid in found:
            self.spans.setdefault(tid, [i, i])[1] = i
            self.counts[tid] = self.counts.get(tid, 0) + 1
            if tid not in self.person_of and self.counts[tid] >= self.options.min_track:
                frame.placed[tid] = self._place(tid)
        frame.ended = self._ended({t.id for t in self.tracker.tracks} | set(found))
        self._forget_frames()
        return frame

    def _place(self, tid: int) -> int:
        """The person of a track with ``min_track`` faces: as :func:`.people.link_tracks`
        decides it, with what has been seen so far."""
        linker = Linker(
            self.seen, self.spans, np.asarray(self.cuts, np.int64), self._describe,
            self.soon, SAME_PERSON_DISTANCE, SAME_PLACE_DISTANCE,
        )  # fmt: skip
        start = self.spans[tid][0]
        record: dict = {"id": tid, "first_frame": start + 1, "confirmed_frame": self.index + 1}
        person = linker.place(tid, self.people, record)
        self.decisions[tid] = record
        self.person_of[tid] = next(k for k, p in enumerate(self.people) if p is person)
        return self.person_of[tid]

    def _describe(self, tid: int) -> np.ndarray | None:
        if tid in self.descriptors:
            return self.descriptors[tid].result()
        if tid not in self.samples:
            return None
        # on the one worker: dlib's network is not to be run from two threads at once
        return self._worker.submit(self.samples[tid].descriptor, self._embed()).result()

    def _embed(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = FaceEmbedder()
        return self._embedder

    def _ended(self, live: set[int]) -> list[int]:
        """Tracks the tracker let go of: a person's keep a descriptor (computed beside the
        frames), the others are forgotten."""
        ended = [t for t in self.samples if t not in live]
        for tid in ended:
            samples = self.samples.pop(tid)
            if tid in self.person_of:
                self.descriptors[tid] = self._worker.submit(samples.descriptor, self._embed())
            else:  # never a person: nothing of it is needed again
                del self.spans[tid], self.counts[tid]
        return ended

    def _forget_frames(self) -> None:
        needed = {i for span in self.spans.values() for i in span}
        for i in [i for i in self.seen if i not in needed]:
            del self.seen[i]

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
