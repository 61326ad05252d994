"""One live frame in, every person's prediction for it out, written as it happens.

Per frame: the faces (:class:`.people.LivePeople`), the backbone on their crops (the frame's
faces together, never waiting for a batch to fill), then per person in view the temporal
head over the window of their last ``seq_len`` faces ending at this one
(:func:`abaw_expr.inference.causal.window_end_values`, the very function that gives a file's
causal values, so a file delivered live gets the values
:func:`~abaw_expr.inference.causal.causal_probabilities` gives it). Only features are kept
(``seq_len`` per person), never frames or crops.

With ``out_dir``, each person's rows go to ``<name>_<k>.csv`` as they are made (the columns of
``predict --video``'s ``<video>.csv`` and ``latency_ms``, from the frame's arrival to its row
being written), flushed after every frame, so a stopped process loses nothing it wrote. A row
is written for each frame in which the person is in view (a file's CSV has every frame; live
cannot fill a frame from a face it has not seen yet). A person's first ``min_track`` faces
wait until the track is told apart (:mod:`.people`), then are written in order, later than the
rest: their latency says so.
"""

from __future__ import annotations

import csv
import time
from array import array
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from abaw_expr.data.images import eval_transform
from abaw_expr.evaluation.evaluate import task_predictions
from abaw_expr.inference.causal import window_end_values
from abaw_expr.inference.engine import BackboneRunner
from abaw_expr.model.temporal import ExpressionModel, task_slices
from abaw_expr.video.live.people import LiveFaces, LivePeople
from abaw_expr.video.outputs import PERSON_COLOURS, frame_row, prediction_columns
from abaw_expr.video.tracks import FaceOptions


@dataclass
class LiveFace:
    """One person in one frame: their name, colour, box (x1, y1, x2, y2 in the frame's pixels)
    and their CSV row (column -> value, as written)."""

    person: str
    colour: str
    box: list[float]
    row: dict


@dataclass
class _Face:
    number: int
    time_s: float
    arrival: float
    box: list[float]
    feature: torch.Tensor


class LivePredictor:
    """``predictor(rgb, number, time_s, arrival)`` -> the :class:`LiveFace` of every person
    told apart in view in that frame (and of the earlier faces of a person told apart in it).

    ``model``: a loaded :class:`ExpressionModel` with a backbone, in eval mode on its device
    (shared by predictors: each holds only its own source's tracks and windows); ``engine``:
    the backbone's (:class:`~abaw_expr.inference.engine.BackboneRunner`)."""

    def __init__(
        self,
        model: ExpressionModel,
        options: FaceOptions,
        seq_len: int,
        name: str,
        out_dir: Path | str | None = None,
        fps: float = 0.0,
        engine: str = "eager",
    ):
        self.model, self.name, self.seq_len = model, name, seq_len
        self.device = next(model.head.parameters()).device
        self.runner = BackboneRunner(model.backbone, self.device, engine, 1, chunk=1)
        self.transform = eval_transform()
        self.people = LivePeople(options, fps)
        self.tasks = tuple(getattr(model.head, "tasks", ("expr",)))
        self.thresholds = getattr(model, "au_thresholds", None)
        self.columns = [*prediction_columns(self.tasks), "latency_ms"]
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.windows: dict[int, deque[torch.Tensor]] = {}  # person -> their last faces
        self.pending: dict[int, list[_Face]] = {}  # track not yet told apart -> its faces
        self.files: dict[int, tuple] = {}  # person -> (file, csv writer)
        self.rows: dict[int, int] = {}  # person -> rows written
        self.cuts: list[int] = []  # the frames that began a shot
        self.latencies = array("f")  # ms, one per row (4 bytes: an hour of rows is 0.4 MB)

    def person_name(self, person: int) -> str:
        return f"{self.name}_{person + 1}"

    def __call__(
        self, rgb: np.ndarray, number: int, time_s: float, arrival: float
    ) -> list[LiveFace]:
        return self.predict(self.see(rgb), number, time_s, arrival)

    def see(self, rgb: np.ndarray) -> LiveFaces:
        """The first stage, the faces of a frame: :meth:`predict` takes it on. The two may run
        in two threads, one frame apart (``live`` does), as nothing of one is the other's."""
        seen = self.people(rgb)
        seen.person_of = {tid: self.people.person_of.get(tid) for tid in seen.faces}
        return seen

    def predict(
        self, seen: LiveFaces, number: int, time_s: float, arrival: float
    ) -> list[LiveFace]:
        """The second stage: the backbone on the faces :meth:`see` gave, each person's window,
        their rows written."""
        if seen.cut:
            self.cuts.append(number)
        tracks = list(seen.faces)
        features = self._features([seen.faces[t][2] for t in tracks])
        now: list[tuple[int, _Face]] = []
        out: list[LiveFace] = []
        for k, tid in enumerate(tracks):
            box = [float(v) for v in seen.faces[tid][0]]
            face = _Face(number, time_s, arrival, box, features[k])
            person = seen.person_of[tid]
            if person is None:
                self.pending.setdefault(tid, []).append(face)
                continue
            for earlier in self.pending.pop(tid, []):  # told apart now: its faces so far
                values = self._values([(person, earlier)])[0]
                out.append(self._write(person, earlier, values))
            now.append((person, face))
        if now:
            for (person, face), values in zip(now, self._values(now), strict=True):
                out.append(self._write(person, face, values))
        for tid in seen.ended:
            self.pending.pop(tid, None)  # too short to be a person
        for file, _ in self.files.values():
            file.flush()
        return out

    def _features(self, crops: list[np.ndarray]) -> torch.Tensor:
        if not crops:
            return torch.zeros(0, self.runner.feature_dim, device=self.device)
        with torch.inference_mode():
            batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
            # a frame's faces in one call, unpadded: 3 faces took 45 ms, one at a time 69 ms
            # (one thread, 2-core AMD EPYC); a face's features then differ by about 1e-7 with
            # the number of faces beside it (oneDNN picks kernels by batch size)
            return self.runner(self.transform(batch), chunk=len(crops))

    def _values(self, faces: list[tuple[int, _Face]]) -> np.ndarray:
        """Each face's values from its person's window ending at it, one head call for all."""
        windows, lengths = [], []
        for person, face in faces:
            window = self.windows.setdefault(person, deque(maxlen=self.seq_len))
            window.append(face.feature)
            lengths.append(len(window))
            padding = [window[-1]] * (self.seq_len - len(window))  # never attended to
            windows.append(torch.stack([*window, *padding]))
        return window_end_values(self.model.head, torch.stack(windows), lengths).cpu().numpy()

    def _write(self, person: int, face: _Face, values: np.ndarray) -> LiveFace:
        row = frame_row(face.number, face.time_s, True, "subject", *self._tracks(values))
        latency = (time.perf_counter() - face.arrival) * 1000.0
        row.append(f"{latency:.1f}")
        if self.out_dir is not None:
            self._writer(person).writerow(row)
        self.rows[person] = self.rows.get(person, 0) + 1
        self.latencies.append(latency)
        colour = PERSON_COLOURS[person % len(PERSON_COLOURS)]
        return LiveFace(
            self.person_name(person), colour, face.box, dict(zip(self.columns, row, strict=True))
        )

    def _tracks(self, values: np.ndarray) -> list:
        """The arguments of :func:`~abaw_expr.video.outputs.frame_row` after the status."""
        values = values[None].astype(np.float32)

        def part(task: str):
            if task not in self.tasks:
                return None
            return (
                values[0] if self.tasks == ("expr",) else values[0, task_slices(self.tasks)[task]]
            )

        def predicted(task: str):
            if task not in self.tasks:
                return None
            return task_predictions(values, self.tasks, task, self.thresholds)[0]

        return [predicted("expr"), part("expr"), None, None,
                predicted("va"), predicted("au"), part("au")]  # fmt: skip

    def _writer(self, person: int):
        if person not in self.files:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.person_name(person)}.csv"
            file = open(path, "w", newline="")  # noqa: SIM115 - open while the person is
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(self.columns)
            self.files[person] = (file, writer)
        return self.files[person][1]

    def close(self) -> None:
        for file, _ in self.files.values():
            file.close()
        self.people.close()
