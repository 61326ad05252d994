"""Live sources: a camera, a device, a stream or a file, read in a thread of their own, handed
on one frame at a time.

A source never queues: the reader keeps only the newest frame it has read. When the pipeline
takes longer than a frame, the frame it did not take is replaced by the next and counted as
dropped, so a slow machine answers late frames with fewer rows, never with a growing backlog or
memory. A file is read as fast as the pipeline takes its frames (every frame, none dropped),
or, with ``realtime``, at its own rate as a camera would deliver it (frames the pipeline
cannot keep up with are dropped as from a camera).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.errors import InputError

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class LiveFrame:
    number: int  # 1-based, in the order the source gave frames (dropped ones included)
    time_s: float  # the file's timestamp; a camera's or stream's seconds since it opened
    rgb: np.ndarray  # (H, W, 3) uint8
    arrival: float  # time.perf_counter() when it was read


def source_kind(source: str) -> str:
    """``camera`` (an index such as ``0``), ``stream`` (a URL), ``device`` (``/dev/video0``)
    or ``file``."""
    if source.isdigit():
        return "camera"
    if source.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if source.startswith("/dev/"):
        return "device"
    return "file"


def source_name(source: str) -> str:
    """The outputs' name of a source: a file's stem, ``camera0``, ``video0`` or the stream's
    host and path, made safe for file names."""
    kind = source_kind(source)
    if kind == "camera":
        return f"camera{source}"
    if kind == "file":
        return Path(source).stem
    tail = source.split("://", 1)[-1] if kind == "stream" else Path(source).name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tail).strip("_.")
    return safe or kind


def open_capture(source: str) -> cv2.VideoCapture:
    """An open OpenCV capture of ``source``; an InputError naming it where it cannot open."""
    kind = source_kind(source)
    if kind == "file" and not Path(source).is_file():
        raise InputError("no such video file (a camera is an index such as 0)", source)
    capture = cv2.VideoCapture(int(source) if kind == "camera" else source)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"cannot open this {kind} (OpenCV could not read it)", source)
    return capture


class FrameSource:
    """Reads ``source`` in a thread from the moment it is made; :meth:`next` gives the newest
    frame not yet taken (waiting for one), None at the end. ``frames_in`` counts the frames
    read, ``frames_dropped`` those replaced before they were taken. :meth:`stop` ends it."""

    def __init__(self, source: str, realtime: bool = False):
        self.source, self.kind = source, source_kind(source)
        self.name = source_name(source)
        self.capture = open_capture(source)
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # a file without realtime: every frame, at the pipeline's pace; else the newest only
        self.drops = realtime or self.kind != "file"
        self.paced = realtime and self.kind == "file"
        self.frames_in = 0
        self.frames_dropped = 0
        self.error: str | None = None
        self._slot: LiveFrame | None = None
        self._ended = False
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="live-source", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        started = time.perf_counter()
        try:
            while not self._stopping.is_set():
                ok, bgr = self.capture.read()
                if not ok or bgr is None:
                    break
                number = self.frames_in + 1
                stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if self.kind == "file":
                    step = 1.0 / self.fps if self.fps > 0 else 0.0
                    time_s = stamp if stamp > 0 or number == 1 else (number - 1) * step
                    if self.paced:  # as a camera would give it: not before its time
                        wait = started + time_s - time.perf_counter()
                        if wait > 0 and self._stopping.wait(wait):
                            break
                else:
                    time_s = time.perf_counter() - started
                self._put(number, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        except cv2.error as err:  # a stream that breaks off: end it, say why
            self.error = str(err).strip().splitlines()[-1]
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _put(self, number: int, time_s: float, rgb: np.ndarray) -> None:
        with self._changed:
            if not self.drops:
                while self._slot is not None and not self._stopping.is_set():
                    self._changed.wait(0.1)
            elif self._slot is not None:
                self.frames_dropped += 1
            self.frames_in += 1
            self._slot = LiveFrame(number, time_s, rgb, time.perf_counter())
            self._changed.notify_all()

    def next(self, timeout: float | None = None) -> LiveFrame | None:
        """The newest frame not yet taken; None when the source has ended (or after
        ``timeout`` seconds without one)."""
        with self._changed:
            deadline = None if timeout is None else time.perf_counter() + timeout
            while self._slot is None and not self._ended:
                left = None if deadline is None else deadline - time.perf_counter()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(0.1 if left is None else min(left, 0.1))
            frame, self._slot = self._slot, None
            self._changed.notify_all()
            return frame

    @property
    def ended(self) -> bool:
        with self._changed:
            return self._ended and self._slot is None

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=5)
        self.capture.release()
