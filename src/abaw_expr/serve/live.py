"""The page's camera mode: a browser sends its camera's frames, one JPEG per HTTP POST, and
gets back, per person in view, their box, colour and predictions.

Transport: plain HTTP, one frame per request, the next frame sent only when the previous
answer has come back. The browser thus sends as fast as the server answers and no faster:
nothing queues on either side, a slow model lowers the frame rate instead of raising the
latency, and Flask needs nothing beyond what it has (no WebSocket server). The cost, a request
per frame, is small next to a face pass on the loopback interface.

Each client has a session (:class:`LiveSessions`) holding its own live predictor
(``abaw_expr.video.live.predictor.LivePredictor``: that client's tracks and per-person feature
windows); the model is shared by every session and run for one frame at a time. Frames are
decoded in memory and dropped after their answer: nothing is written to disk and nothing is
kept (unless ``keep_frames``, a test hook). Bounds, each refused with a one-line JSON
``error`` (:class:`LiveError`): the frame's bytes and pixels, frames per second per client, the
number of clients at once; a session with no frame for ``idle_s`` seconds ends by itself.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from abaw_expr.tasks import AU_NAMES, CLASS_NAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveLimits:
    """The camera mode's bounds (``create_app``'s ``live_*`` parameters)."""

    max_bytes: int = 2 * 2**20  # one JPEG frame
    max_width: int = 1280
    max_height: int = 720  # portrait frames: the same bounds turned (720x1280 is fine)
    max_fps: float = 30.0  # frames per second per client; above: 429
    max_clients: int = 2  # camera clients at once; another: 503
    idle_s: float = 10.0  # a session without a frame for this long ends


class LiveError(Exception):
    """A refused request: its HTTP status and one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class LiveSession:
    id: str
    predictor: object
    started: float  # clock() when it began
    last_seen: float  # clock() of its latest request
    frames: int = 0  # frames answered
    arrivals: deque = field(default_factory=deque)  # clock() of the frames in the last second
    busy: threading.Lock = field(default_factory=threading.Lock)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read before decoding (so that a small file
    of huge pixel dimensions is refused without decoding it); None if ``data`` is no JPEG.
    Pillow's ``Image.open`` reads the header only (and raises ``DecompressionBombError`` for
    a header of over 179 million pixels)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size if image.format == "JPEG" else None
    except (OSError, ValueError):
        return None


def face_json(face, tasks: tuple[str, ...]) -> dict:
    """One person of a frame's answer, from a ``LiveFace``: ``person``, ``colour``, ``box``
    (x0, y0, x1, y1 in the frame's pixels) and the checkpoint's tracks: ``label`` (the
    expression's name), ``class`` (its index: the page's colour) and ``probability``;
    ``valence`` and ``arousal``; ``aus`` (the names of the AUs on)."""
    row = face.row
    out = {
        "person": face.person,
        "colour": face.colour,
        "box": [round(float(v), 1) for v in face.box],
    }
    if "expr" in tasks:
        index = int(row["label"])
        out["label"] = CLASS_NAMES[index]
        out["class"] = index
        out["probability"] = round(float(row[CLASS_NAMES[index]]), 4)
    if "va" in tasks:
        out["valence"] = round(float(row["valence"]), 4)
        out["arousal"] = round(float(row["arousal"]), 4)
    if "au" in tasks:
        out["aus"] = [name for name in AU_NAMES if int(row[name])]
    return out


def _of_frame(face, number: int) -> bool:
    """Whether a ``LiveFace`` is of frame ``number``: the predictor also hands on the earlier
    faces of a person it has just told apart, which the page, drawing now, does not draw."""
    frame = face.row.get("frame")
    return frame is None or int(frame) == number


class LiveSessions:
    """The camera clients' sessions. ``make_predictor(name)`` gives a new session its live
    predictor (the shared model inside); ``model_lock`` is held while a frame is predicted,
    so that sessions (and the upload jobs' thread, if it takes it) use the model one at a time.
    ``clock`` is injectable for the tests of expiry and rate."""

    def __init__(
        self,
        make_predictor: Callable[[str], object],
        tasks: tuple[str, ...],
        limits: LiveLimits | None = None,
        keep_frames: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.make_predictor, self.tasks = make_predictor, tuple(tasks)
        self.limits = limits or LiveLimits()
        self.clock = clock
        self.sessions: dict[str, LiveSession] = {}
        # test hook: session id -> [(rgb, number, time_s, arrival)], what its predictor was given
        self.kept: dict[str, list] | None = {} if keep_frames else None
        self.model_lock = threading.Lock()
        self._lock = threading.Lock()

    def start(self) -> LiveSession:
        """A new session, or 503 while ``max_clients`` are connected."""
        limits = self.limits
        with self._lock:
            self._expire()
            if len(self.sessions) >= limits.max_clients:
                raise LiveError(
                    503,
                    f"{limits.max_clients} camera clients are connected, the most at once: "
                    f"try again when one stops (or after {limits.idle_s:g} s without a frame)",
                )
            now = self.clock()
            sid = uuid.uuid4().hex
            session = LiveSession(sid, None, now, now)
            self.sessions[sid] = session
        try:
            session.predictor = self.make_predictor("camera")
        except BaseException:
            with self._lock:
                self.sessions.pop(sid, None)
            raise
        if self.kept is not None:
            self.kept[sid] = []
        return session

    def frame(self, sid: str, data: bytes, content_type: str | None) -> dict:
        """One frame's answer (see :func:`face_json`), or a :class:`LiveError`."""
        arrival = time.perf_counter()
        limits = self.limits
        with self._lock:
            self._expire()
            session = self.sessions.get(sid)
            if session is None:
                raise LiveError(
                    404,
                    f"no camera session {sid[:12]}: it stopped, or ended after "
                    f"{limits.idle_s:g} s without a frame",
                )
            now = self.clock()
            session.last_seen = now
            while session.arrivals and session.arrivals[0] <= now - 1.0:
                session.arrivals.popleft()
            if len(session.arrivals) >= limits.max_fps:
                raise LiveError(
                    429, f"more than {limits.max_fps:g} frames per second: send frames slower"
                )
            session.arrivals.append(now)
        if not session.busy.acquire(blocking=False):
            raise LiveError(429, "one frame at a time: the previous frame is not answered yet")
        try:
            rgb = self._decode(data, content_type)
            with self._lock:
                session.frames += 1
                number = session.frames
            time_s = now - session.started
            if self.kept is not None:
                self.kept[sid].append((rgb, number, time_s, arrival))
            with self.model_lock:
                faces = session.predictor(rgb, number, time_s, arrival)
            people = [face_json(f, self.tasks) for f in faces if _of_frame(f, number)]
        finally:
            session.busy.release()
        with self._lock:
            session.last_seen = self.clock()
        return {
            "frame": number,
            "time_s": round(time_s, 4),
            "width": rgb.shape[1],
            "height": rgb.shape[0],
            "people": people,
            "server_ms": round((time.perf_counter() - arrival) * 1000, 1),
        }

    def _decode(self, data: bytes, content_type: str | None) -> np.ndarray:
        limits = self.limits
        if content_type is not None and content_type.split(";")[0].strip() != "image/jpeg":
            raise LiveError(415, f"a frame must be image/jpeg, not {content_type[:40]}")
        if len(data) > limits.max_bytes:
            raise LiveError(413, f"the frame is larger than {limits.max_bytes / 2**20:g} MB")
        try:
            size = jpeg_size(data)
        except Image.DecompressionBombError:
            size = (2**16, 2**16)  # more than any bound: refused below, as too large
        if size is None:
            raise LiveError(400, "the frame is not a JPEG image")
        w, h = size
        long_side, short_side = (
            max(limits.max_width, limits.max_height),
            min(limits.max_width, limits.max_height),
        )
        if max(w, h) > long_side or min(w, h) > short_side or not w or not h:
            raise LiveError(
                413,
                f"the frame is {w}x{h} pixels, more than {limits.max_width}x{limits.max_height}",
            )
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape[:2] != (h, w):
            raise LiveError(400, "the frame is not a JPEG image (it does not decode)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def end(self, sid: str) -> bool:
        """End a session (its predictor closed); False if there was none."""
        with self._lock:
            session = self.sessions.pop(sid, None)
        if session is None:
            return False
        self._close(session)
        return True

    def close(self) -> None:
        with self._lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            self._close(session)

    def _expire(self) -> None:
        """Drop the sessions idle for ``idle_s`` (called under ``_lock``)."""
        now = self.clock()
        for sid in [s for s, x in self.sessions.items() if now - x.last_seen > self.limits.idle_s]:
            session = self.sessions.pop(sid)
            log.info(
                "camera session %s ended after %.0f s without a frame", sid, now - session.last_seen
            )
            threading.Thread(target=self._close, args=(session,), daemon=True).start()

    @staticmethod
    def _close(session: LiveSession) -> None:
        with session.busy:  # not while its last frame is predicted
            close = getattr(session.predictor, "close", None)
            if close is not None:
                close()
