"""A browser-playable copy of a video, encoded while the video is being analysed.

``serve`` shows an upload in the browser whatever its codec, so it needs a WebM (VP8) copy.
Encoding that copy after the analysis doubled the wait (a second decode, and OpenCV's VP8
writer runs libvpx at its slow "good" deadline). Here the frames that the analysis decodes
anyway are handed to :class:`PreviewEncoder`, which scales them down and encodes them with
PyAV's libvpx at the realtime deadline in a thread of its own (PyAV and OpenCV leave the
interpreter lock while they work), so the preview is finished a moment after the last frame
is analysed.
Boxes and labels are not burnt in: the page draws them over the video from ``result.json``.

Each frame keeps its own timestamp (milliseconds), so variable-frame-rate uploads stay in step
with the per-frame results.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.writers import atomic_write

_DONE = object()


def preview_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The preview's even-sided size: ``width`` x ``height`` scaled down to ``max_width``."""
    if max_width and width > max_width:
        height, width = height * max_width / width, max_width
    return max(round(width / 2) * 2, 2), max(round(height / 2) * 2, 2)


class PreviewEncoder:
    """``add(rgb, time_s)`` per frame, in order, then ``close()``: ``path`` is written
    atomically. ``abort()`` drops the partial file. Errors of the encoder thread come back from
    ``add`` or ``close``."""

    def __init__(self, path: Path | str, max_width: int = 640, crf: int = 16, queue_size: int = 32):
        self.path = Path(path)
        self.max_width, self.crf = max_width, crf
        self._queue: queue.Queue = queue.Queue(queue_size)  # bounded: decoding waits, never RAM
        self._error: BaseException | None = None
        self._frames = 0
        self.source_size = (0, 0)  # (width, height) of the frames given, once one was
        self._thread = threading.Thread(target=self._run, name="abaw-expr-preview", daemon=True)
        self._aborted = False
        self._input_done = False  # the encoder thread has taken the end marker
        self._thread.start()

    @property
    def frames(self) -> int:
        return self._frames

    def add(self, rgb: np.ndarray, time_s: float) -> None:
        if self._error is not None:
            raise self._error
        if self.source_size == (0, 0):
            self.source_size = (rgb.shape[1], rgb.shape[0])
        self._queue.put((rgb, time_s))

    def close(self) -> Path:
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.path

    def abort(self) -> None:
        self._aborted = True
        self._queue.put(_DONE)
        self._thread.join()

    def _run(self) -> None:
        try:
            atomic_write(self.path, self._encode, suffix=".tmp.webm")
        except _Aborted:
            pass
        except BaseException as err:  # handed to the caller by add() / close()
            self._error = err
            # unblock a producer waiting on a full queue, until its close() or abort()
            while not self._input_done and self._queue.get() is not _DONE:
                pass

    def _encode(self, tmp: Path) -> None:
        import av

        with av.open(str(tmp), mode="w", format="webm") as container:
            stream = None
            last_pts = -1
            while (item := self._queue.get()) is not _DONE:
                if self._aborted:
                    continue
                rgb, time_s = item
                if stream is None:
                    width, height = preview_size(rgb.shape[1], rgb.shape[0], self.max_width)
                    stream = container.add_stream("libvpx", rate=30)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.time_base = Fraction(1, 1000)
                    stream.codec_context.time_base = Fraction(1, 1000)
                    # libvpx's fastest setting, one thread: ~2.6 ms a 640x360 frame on the
                    # 2-core CPU, beside an analysis that wants both cores (RESULTS.md)
                    stream.options = {
                        "deadline": "realtime",
                        "cpu-used": "16",
                        "crf": str(self.crf),
                        "b": "1500k",
                        "threads": "1",
                    }
                if rgb.shape[:2] != (stream.height, stream.width):
                    rgb = cv2.resize(
                        rgb, (stream.width, stream.height), interpolation=cv2.INTER_AREA
                    )
                # OpenCV converts 3x faster than PyAV's swscale here, and lets go of the GIL
                yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                # strictly increasing: two frames stamped within one millisecond stay apart
                last_pts = frame.pts = max(round(time_s * 1000), last_pts + 1)
                container.mux(stream.encode(frame))
                self._frames += 1
            self._input_done = True
            if self._aborted:
                raise _Aborted  # atomic_write removes the partial file
            if stream is None:
                raise ValueError("no frame to encode")
            container.mux(stream.encode(None))


class _Aborted(Exception):
    pass
