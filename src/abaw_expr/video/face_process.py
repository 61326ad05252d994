"""The face pass of ``predict --video`` in a process of its own, started before PyTorch is
imported.

Importing PyTorch and torchvision and reading the checkpoint take about 5 s on a 2-core
machine, and all of it holds the interpreter lock, as dlib's detector does: a thread cannot
overlap them (tried, see benchmarks/RESULTS.md). A process can. The command starts this one
first; while it imports PyTorch, the process loads the detector and follows the faces through
the first frames, so crops are waiting when the backbone is ready, and from then on the face
search and the backbone run side by side without sharing an interpreter.

The process runs the very code of the in-process pass (:func:`.tracks.track_video` or
:func:`.tracks.track_people`) and sends what its callbacks get; :meth:`FacePassProcess.track`
replays those calls into the parent's callbacks, in order, and returns the same result, so the
outputs are the same either way. Nothing here imports PyTorch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path

from abaw_expr.errors import InputError
from abaw_expr.video.tracks import FaceOptions, progress_bar, track_people, track_video

log = logging.getLogger(__name__)

# Messages waiting in the pipe at most: crops are 37 KB at 112 px, so this bounds the memory a
# face pass that runs ahead of the backbone can fill (about 20 MB), then it waits.
MAX_PENDING = 512


class FacePassProcess:
    """Follows the faces of ``videos`` (in order) in a spawned process, from the moment it is
    made. Ask for the videos' results in the same order with :meth:`track`; :meth:`close`
    (or leaving a ``with`` block) stops the process."""

    def __init__(self, videos: list[Path], options: FaceOptions):
        self.videos = [Path(v) for v in videos]
        self.options = replace(options)  # a copy: later changes by the caller are not ours
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._messages = context.Queue(MAX_PENDING)
        self._process = context.Process(
            target=_face_pass,
            args=(self.videos, self.options, self._messages),
            name="abaw-expr-faces",
            daemon=True,  # ended at the command's exit (and when it is killed: _face_pass)
        )
        self._process.start()
        self._next = 0

    def serves(self, videos: list[Path], options: FaceOptions) -> bool:
        """Whether this process follows exactly these videos with exactly these options."""
        return (
            self._next == 0 and self.videos == [Path(v) for v in videos] and self.options == options
        )

    def track(
        self,
        video: Path,
        on_face: Callable[..., None],
        progress: bool = False,
        on_frame: Callable[[int, int], None] | None = None,
    ):
        """What :func:`.tracks.track_video` (``faces="one"``) or :func:`.tracks.track_people`
        (``"all"``) returns for ``video``, the next of this process's videos; ``on_face`` and
        ``on_frame`` get the calls they would get in-process. A video the pass cannot read
        raises the :class:`InputError` it raised there."""
        if self._next >= len(self.videos) or Path(video) != self.videos[self._next]:
            raise ValueError(f"{video}: not the next video of this face pass")
        self._next += 1
        bar = None
        try:
            while True:
                kind, payload = self._receive()
                if kind == "face":
                    on_face(*payload)
                elif kind == "frame":
                    number, declared = payload
                    if progress and bar is None:
                        bar = progress_bar(Path(video).stem, declared)
                    if bar is not None:
                        bar.update()
                    if on_frame is not None:
                        on_frame(number, declared)
                elif kind == "log":
                    log.log(*payload)
                elif kind == "done":
                    return payload
                elif kind == "error":
                    raise InputError(payload)
                else:  # "crash": a bug, not bad input; the pass has stopped
                    raise RuntimeError(f"the face pass failed on {video}:\n{payload}")
        finally:
            if bar is not None:
                bar.close()

    def _receive(self) -> tuple[str, object]:
        while True:
            try:
                return self._messages.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    try:  # it may have sent its last message just before it ended
                        return self._messages.get(timeout=0.1)
                    except queue.Empty:
                        raise RuntimeError(
                            "the face pass process ended unexpectedly "
                            f"(exit code {self._process.exitcode})"
                        ) from None

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        self._messages.close()

    def __enter__(self) -> FacePassProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _ForwardLogs(logging.Handler):
    """Warnings of the face pass (a truncated video, say) go to the parent's log."""

    def __init__(self, messages):
        super().__init__(logging.INFO)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.put(("log", (record.levelno, record.getMessage())))


def _leave_with_parent() -> None:
    """Ends this process as soon as the command's process is gone (killed, say), wherever this
    one is blocked: sending to a full pipe nobody reads, or flushing it on the way out."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _face_pass(videos: list[Path], options: FaceOptions, messages) -> None:
    # Ctrl-C is the command's to handle: it stops this process (close()) on its way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _leave_with_parent()
    root = logging.getLogger()
    root.addHandler(_ForwardLogs(messages))
    root.setLevel(logging.INFO)
    track = track_people if options.faces == "all" else track_video
    for video in videos:
        try:
            result = track(
                video,
                options,
                lambda *args: messages.put(("face", args)),
                False,
                lambda number, declared: messages.put(("frame", (number, declared))),
            )
        except InputError as err:
            messages.put(("error", str(err)))
            continue
        except Exception:
            messages.put(("crash", traceback.format_exc()))
            return
        messages.put(("done", result))
