"""Following faces through a video: one subject (:class:`SubjectTracker`), or every face with a
track of its own (:class:`MultiFaceTracker`, at the end of this module).

One subject per video: detect, follow by box overlap, re-detect, and name the other faces.

The subject is the largest face when tracking starts. Each frame it is looked for near its last
box (a detection in a window around it, cheap, and at a lower score threshold: a face that
was there a frame ago needs less evidence); every ``detect_every`` frames, and whenever it
is lost, the whole frame is searched. A face that overlaps the subject's last box (IoU >=
``min_iou``) is the subject; the other faces of a full search are kept as bystanders, followed
by overlap in the same way.

A subject that is missed is still looked for near its last box for ``patience`` frames (default
``detect_every``): detectors miss single frames. After that, a newly appearing face (one that is
not a known bystander) becomes the subject again: a person who leaves and comes back is followed, and a bystander who stays in view
is never taken for the subject. Without face recognition, a stranger who enters while the
subject is away is taken for the subject (documented limitation).

Each frame is reported as ``subject`` (its box and five landmarks), ``other`` (the subject is
not in view, somebody else is), or ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from abaw_expr.faces.base import Detection, FaceDetector, iou

Box = tuple[float, float, float, float]

SUBJECT, OTHER, NONE = "subject", "other", "none"


@dataclass
class FaceObservation:
    status: str  # SUBJECT, OTHER or NONE
    box: Box | None = None  # the subject's box, frame pixels
    points: np.ndarray | None = None  # the subject's five landmarks (5, 2)
    others: list[Box] = field(default_factory=list)  # other faces known in this frame
    full_search: bool = False  # whether the whole frame was searched for faces


class SubjectTracker:
    """Feed frames in order; each call returns that frame's :class:`FaceObservation`."""

    def __init__(
        self,
        detector: FaceDetector,
        detect_every: int = 10,
        detect_width: int = 640,
        min_iou: float = 0.3,
        search_margin: float = 0.5,
        min_face: int = 100,
        near_threshold: float = -0.8,
        patience: int | None = None,
    ):
        self.detector = detector
        self.detect_every = max(int(detect_every), 1)
        self.detect_width = detect_width
        self.min_iou = min_iou
        self.search_margin = search_margin
        self.min_face = min_face  # faces are searched near the subject at about this width
        self.near_threshold = near_threshold
        # frames a lost subject is still looked for where it was (default: detect_every)
        self.patience = self.detect_every if patience is None else patience
        self._missed = 0
        self.subject: Box | None = None
        self.bystanders: list[Box] = []
        self._since_full = 0

    def __call__(self, frame: np.ndarray) -> FaceObservation:
        found = None
        full = not self._following() or self._since_full >= self.detect_every
        if not full:
            found = self._search_near(frame)
            full = found is None
        others = self.bystanders
        if full:
            self._since_full = 0
            found, others = self._assign(self._search_frame(frame))
            if found is None and self._following():
                # Missed by the whole-frame search: look where it just was, with less evidence.
                found = self._search_near(frame)
        self._since_full += 1
        if found is None:
            self._missed += 1
            return FaceObservation(OTHER if others else NONE, others=others, full_search=full)
        self.subject, self._missed = found.box, 0
        points = _points(self.detector, frame, found)
        return FaceObservation(SUBJECT, found.box, points, others, full)

    def _following(self) -> bool:
        """Whether the subject was seen recently enough to be looked for where it was."""
        return self.subject is not None and self._missed <= self.patience

    def _assign(self, faces: list[Detection]) -> tuple[Detection | None, list[Box]]:
        """The subject among the faces of a whole-frame search; the others as bystanders."""
        following = self._following()
        subject = self._best_match(faces, self.subject) if following else None
        rest = [f for f in faces if f is not subject]
        if subject is not None:
            self.bystanders = [f.box for f in rest]
            return subject, self.bystanders
        known = [f for f in rest if any(iou(f.box, b) >= self.min_iou for b in self.bystanders)]
        new = [f for f in rest if all(f is not k for k in known)]
        if new and not following:  # the subject is gone: a face new to us takes its place
            subject = max(new, key=lambda f: f.area)
            new = [f for f in new if f is not subject]
            self.bystanders = [f.box for f in known + new]
        else:  # just missed, perhaps: new faces are not taken for bystanders yet
            self.bystanders = [f.box for f in known]
        return subject, [f.box for f in rest if f is not subject]

    def _best_match(self, faces: list[Detection], box: Box) -> Detection | None:
        scored = [(iou(f.box, box), f) for f in faces]
        scored = [(s, f) for s, f in scored if s >= self.min_iou]
        return max(scored, key=lambda sf: sf[0])[1] if scored else None

    def _search_frame(self, frame: np.ndarray) -> list[Detection]:
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        return self._detect_scaled(frame, scale, 0, 0)

    def _search_near(self, frame: np.ndarray) -> Detection | None:
        """The subject, found in a window around its last box (scaled so that the face is about
        ``min_face`` wide), or None."""
        detections = self._detect_near(frame, self.subject)
        return self._best_match(detections, self.subject)

    def _detect_near(self, frame: np.ndarray, box: Box) -> list[Detection]:
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = box
        mx, my = (x1 - x0) * self.search_margin, (y1 - y0) * self.search_margin
        left, top = max(int(x0 - mx), 0), max(int(y0 - my), 0)
        right, bottom = min(int(x1 + mx) + 1, width), min(int(y1 + my) + 1, height)
        if right - left < 8 or bottom - top < 8:
            return []
        scale = min(1.0, self.min_face / max(x1 - x0, 1.0))
        return self._detect_scaled(
            frame[top:bottom, left:right], scale, left, top, self.near_threshold
        )

    def _detect_scaled(
        self, image: np.ndarray, scale: float, left: int, top: int, threshold: float = 0.0
    ) -> list[Detection]:
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return [
            Detection(
                (
                    d.box[0] / scale + left,
                    d.box[1] / scale + top,
                    d.box[2] / scale + left,
                    d.box[3] / scale + top,
                ),
                d.score,
                None if d.points is None else d.points / scale + np.float32([left, top]),
            )
            for d in self.detector.detect(image, threshold)
        ]


@dataclass
class Track:
    """One face followed through a video: its last box, its motion, and when it was seen."""

    id: int
    box: Box
    first: int  # 0-based frame it was first seen
    last: int  # 0-based frame it was last seen
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre, pixels a frame
    missed: int = 0

    def predicted(self, frame: int) -> Box:
        """The box moved on by its velocity to ``frame``."""
        dt = frame - self.last
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x0, y0, x1, y1 = self.box
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)


def _points(detector: FaceDetector, frame: np.ndarray, detection: Detection) -> np.ndarray:
    """The five points of a detection: found with it, or by the detector's landmarks."""
    if detection.points is not None:
        return detection.points
    return detector.landmarks(frame, detection.box)


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


class MultiFaceTracker(SubjectTracker):
    """Every face of a video, each with its own track. Feed frames in order; each call returns
    ``[(track id, box, five points), ...]`` for the faces found in that frame.

    Each track is looked for near where its motion says it is now (its last box moved on by
    its velocity), and the whole frame is searched every ``detect_every`` frames and whenever
    a track was missed. Detections go to tracks by one assignment over all of them, the tracks
    seen most recently first (as DeepSORT's matching cascade), then largest overlap with the
    predicted box: when two people cross, each keeps the face that moves the way it was moving,
    and a track hidden behind another person does not take that person's face when the front
    one is missed for a frame. A face of a whole-frame search that no track claims starts a new
    track; a track missed for more than ``patience`` frames ends, and so does every track at a
    shot cut (``cut=True``: the same place in a new shot is not the same person). Track ids
    count up from 1 in order of appearance; a person who comes back gets a new one, and
    :func:`abaw_expr.video.people.link_tracks` joins them by appearance.
    """

    def __init__(self, detector: FaceDetector, **kwargs):
        super().__init__(detector, **kwargs)
        self.tracks: list[Track] = []  # live tracks
        self._next_id = 1
        self._frame = -1
        self._lost = False

    def __call__(self, frame: np.ndarray, cut: bool = False) -> list[tuple[int, Box, np.ndarray]]:
        self._frame += 1
        i = self._frame
        if cut:
            self.tracks = []
        full = not self.tracks or self._lost or self._since_full >= self.detect_every
        candidates: list[Detection] = []
        if full:
            self._since_full = 0
            candidates = self._search_frame(frame)
        self._since_full += 1
        predicted = {t.id: t.predicted(i) for t in self.tracks}
        matched = self._assign(candidates, predicted)
        for track in self.tracks:  # not in the whole-frame search (or none ran): look near it
            if track.id not in matched:
                near = self._detect_near(frame, predicted[track.id])
                candidates += [d for d in near if all(iou(d.box, c.box) < 0.5 for c in candidates)]
        if len(matched) < len(self.tracks):
            matched = self._assign(candidates, predicted)
        found = []
        for track in self.tracks:
            detection = matched.get(track.id)
            if detection is None:
                track.missed += 1
                continue
            old, new = _centre(track.box), _centre(detection.box)
            dt = i - track.last
            step = ((new[0] - old[0]) / dt, (new[1] - old[1]) / dt)
            track.velocity = tuple(
                0.5 * v + 0.5 * s for v, s in zip(track.velocity, step, strict=True)
            )
            track.box, track.last, track.missed = detection.box, i, 0
            found.append((track.id, detection))
        self._lost = any(t.missed for t in self.tracks)
        self.tracks = [t for t in self.tracks if t.missed <= self.patience]
        if full:  # faces nobody claims, and that overlap no claimed face, are new people
            claimed = [d.box for d in matched.values()]
            for d in candidates:
                if all(iou(d.box, b) < self.min_iou for b in claimed) and d.score >= 0:
                    track = Track(self._next_id, d.box, i, i)
                    self._next_id += 1
                    self.tracks.append(track)
                    claimed.append(d.box)
                    found.append((track.id, d))
        return [(tid, d.box, _points(self.detector, frame, d)) for tid, d in found]

    def _assign(self, faces: list[Detection], predicted: dict[int, Box]) -> dict[int, Detection]:
        """Track id -> detection, greedily: tracks missed for fewer frames first, then by overlap
        with the predicted box (IoU >= min_iou)."""
        missed = {t.id: t.missed for t in self.tracks}
        pairs = sorted(
            (
                (missed.get(tid, 0), -iou(f.box, box), n, tid)
                for tid, box in predicted.items()
                for n, f in enumerate(faces)
            ),
        )
        matched: dict[int, Detection] = {}
        used: set[int] = set()
        for _, negative_overlap, n, tid in pairs:
            if -negative_overlap < self.min_iou:
                continue
            if tid in matched or n in used:
                continue
            matched[tid] = faces[n]
            used.add(n)
        return matched
