"""``abaw-expr live``: a source's frames through :class:`.predictor.LivePredictor` until it
ends, Ctrl-C or SIGTERM, with a status line, and ``live.json`` at the end.

The model loads before the source opens (a camera's frames are not dropped while it loads),
and runs once on a blank face first, so the first frame does not pay for the backbone's first
call. ``live.json`` (written atomically, whatever stopped the run):

- ``frames_in``: frames the source gave; ``frames_processed``: those the model saw;
  ``frames_dropped``: the rest (replaced by a newer frame before the pipeline was free);
- ``latency_ms_p50``, ``latency_ms_p95``: from a frame's arrival to its row being written,
  over every row; ``fps``: frames processed a second, from the first to the last;
- ``people``: each person's name, CSV, rows, and how their tracks were told apart;
- ``stopped_by``: ``end`` (the source ended), ``ctrl-c``, ``sigterm``, or ``stop`` (the
  caller's ``stop`` event).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from abaw_expr.inference.device import pick_device
from abaw_expr.inference.engine import engine_beside_faces
from abaw_expr.inference.provenance import model_fields
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.video.live.predictor import LivePredictor
from abaw_expr.video.live.source import FrameSource, source_name
from abaw_expr.video.predict import _load_video_model
from abaw_expr.video.tracks import FaceOptions
from abaw_expr.writers import atomic_write_json

log = logging.getLogger(__name__)

RECORD = "live.json"
# PyTorch's threads for the model, live. A frame's work is the backbone on that frame's few
# faces: small operations, each of which two threads must meet after. On the quiet 2-core
# machine two threads were no faster for one face (23.8 against 23.2 ms), and beside other
# processes they waited for each other more than they computed (590 against 42 ms); the other
# core goes to the face search of the next frame (RESULTS.md, live).
THREADS = 1


@contextmanager
def _stop_on_sigterm(stop: threading.Event, signalled: list):
    """SIGTERM sets ``stop`` and notes it in ``signalled`` (in the main thread; elsewhere the
    default stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(*_) -> None:
        signalled.append("sigterm")
        stop.set()

    before = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class _Status:
    """The terminal's status line, once a second: frames/s, people in view, latency, drops."""

    def __init__(self, name: str, show: bool):
        self.name, self.show = name, show
        self.recent: deque[tuple[float, float]] = deque()  # (time, latency) of the last 2 s
        self.frames: deque[float] = deque()
        self.last = 0.0

    def __call__(self, now: float, latencies, in_view: int, dropped: int) -> None:
        self.frames.append(now)
        self.recent.extend((now, lat) for lat in latencies)
        while self.frames and self.frames[0] < now - 2:
            self.frames.popleft()
        while self.recent and self.recent[0][0] < now - 2:
            self.recent.popleft()
        if not self.show or now - self.last < 1.0:
            return
        self.last = now
        fps = len(self.frames) / 2.0
        lat = [x for _, x in self.recent]
        text = f"{self.name}: {fps:5.1f} frames/s, {in_view} in view"
        if lat:
            text += f", latency {np.median(lat):4.0f} ms (p95 {np.percentile(lat, 95):4.0f})"
        sys.stderr.write(f"\r{text}, {dropped} dropped   ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.show:
            sys.stderr.write("\n")


def run_live(
    checkpoint: Path | str,
    source: str,
    out_dir: Path | str,
    options: FaceOptions | None = None,
    settings: InferenceSettings | None = None,
    realtime: bool = False,
    status: bool | None = None,
    stop: threading.Event | None = None,
) -> dict:
    """Predict ``source`` live into ``out_dir`` (see the module's text); returns the record
    written to ``live.json``. ``stop``: set it to end the run (as SIGTERM does); ``status``:
    the status line (default: when stderr is a terminal)."""
    options = options or FaceOptions()
    settings = settings or InferenceSettings()
    out_dir = Path(out_dir)
    stop = stop or threading.Event()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(checkpoint, source, out_dir, options, settings, realtime, status, stop)
    finally:
        torch.set_num_threads(threads)


def _run(checkpoint, source, out_dir, options, settings, realtime, status, stop) -> dict:
    model, config = _load_video_model(checkpoint)
    options.size = config.data.image_size
    device = pick_device(settings.device)
    model = model.to(device).eval()
    name = source_name(source)
    frames = FrameSource(source, realtime)
    predictor = LivePredictor(
        model, options, config.data.seq_len, name, out_dir, frames.fps,
        engine_beside_faces(settings.engine),
    )  # fmt: skip
    predictor._features([np.zeros((options.size, options.size, 3), np.uint8)])  # warm up
    show = sys.stderr.isatty() if status is None else status
    line = _Status(name, show)
    processed, first, last, stopped_by, signalled = 0, None, None, "end", []
    model_stage = ThreadPoolExecutor(1, thread_name_prefix="live-model")
    running: Future | None = None  # the model stage of the frame before: one at a time

    def finished(step: Future | None) -> None:
        nonlocal processed, first, last
        if step is None:
            return
        faces = step.result()
        processed += 1
        last = time.perf_counter()
        first = first or last
        latencies = [float(face.row["latency_ms"]) for face in faces]
        line(last, latencies, len(faces), frames.frames_in - processed)

    with _stop_on_sigterm(stop, signalled):
        try:
            while not stop.is_set():
                frame = frames.next(timeout=0.5)
                if frame is None:
                    if frames.ended:
                        break
                    continue
                seen = predictor.see(frame.rgb)  # while the model runs on the frame before
                finished(running)
                running = model_stage.submit(
                    predictor.predict, seen, frame.number, frame.time_s, frame.arrival
                )
            else:
                stopped_by = signalled[0] if signalled else "stop"
        except KeyboardInterrupt:
            stopped_by = "ctrl-c"
        finally:
            model_stage.shutdown(wait=True)  # a frame under way is written before the record
            if running is not None and running.exception() is None:
                finished(running)
            frames.stop()
            predictor.close()
            line.end()
            record = _record(predictor, frames, processed, first, last, stopped_by, options)
            record.update(source=source, realtime=realtime, **model_fields(model))
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out_dir / RECORD, record)
    if frames.error:
        log.warning("%s: the source broke off (%s)", source, frames.error)
    return record


def _record(
    predictor: LivePredictor,
    frames: FrameSource,
    processed: int,
    first: float | None,
    last: float | None,
    stopped_by: str,
    options: FaceOptions,
) -> dict:
    latencies = np.asarray(predictor.latencies, np.float64)
    seconds = (last - first) if first is not None and last is not None else 0.0
    people = []
    for person, rows in sorted(predictor.rows.items()):
        tracks = [t for t, p in predictor.people.person_of.items() if p == person]
        people.append(
            {
                "name": predictor.person_name(person),
                "csv": f"{predictor.person_name(person)}.csv",
                "rows": rows,
                "tracks": [predictor.people.decisions[t] for t in tracks],
            }
        )
    percentile = (
        (lambda q: round(float(np.percentile(latencies, q)), 1))
        if len(latencies)
        else (lambda q: None)
    )
    return {
        "name": predictor.name,
        "frames_in": frames.frames_in,
        "frames_processed": processed,
        "frames_dropped": frames.frames_in - processed,
        "latency_ms_p50": percentile(50),
        "latency_ms_p95": percentile(95),
        "fps": round((processed - 1) / seconds, 2) if seconds > 0 else None,
        "source_fps": frames.fps,
        "rows": int(len(latencies)),
        "people": people,
        "shot_cuts": predictor.cuts,
        "stopped_by": stopped_by,
        "detector": options.detector,
        "min_track": options.min_track,
        "torch_threads": THREADS,
    }
