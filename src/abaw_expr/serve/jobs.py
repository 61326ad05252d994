"""Uploaded videos, processed one at a time in a background thread.

Each job lives in its own folder under one temporary root (removed when the server stops); only
the newest ``keep`` jobs are kept. A job goes ``queued`` -> ``running`` (with a frame count) ->
``finishing`` (the preview's last frames, the outputs) -> ``done``, or ``failed`` with a
one-line reason.

Every person in the video is followed and predicted, as ``predict --video`` does (with
``FaceOptions.faces == "one"``, the subject alone); each person's outputs are named for them
(``<video>_left.csv``, ...), beside the video's ``<video>.json`` record.

The browser-playable preview (WebM) is encoded from the frames the analysis decodes, while it
analyses (:mod:`abaw_expr.video.preview`); the page draws the boxes and labels over it from
``result.json``, so nothing is rendered after the analysis.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.inference.device import pick_device
from abaw_expr.inference.engine import BackboneRunner, engine_beside_faces
from abaw_expr.inference.provenance import model_fields, warn_if_toy
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.inference.thresholds import load_au_thresholds
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES
from abaw_expr.video.batch import record_path
from abaw_expr.video.outputs import (
    person_colour,
    submission_files,
    write_outputs,
    write_record,
)
from abaw_expr.video.predict import checkpoint_settings, predict_people, predict_video
from abaw_expr.video.prediction import VideoPrediction
from abaw_expr.video.preview import PreviewEncoder
from abaw_expr.video.tracks import FaceOptions
from abaw_expr.writers import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

PREVIEW = "preview.webm"  # VP8: what browsers play, whatever the upload's codec
PREVIEW_WIDTH = 960  # wider uploads are scaled down for the page
RESULT = "result.json"  # what the page draws: every person's boxes and tracks
RESERVED = ("result", "preview", "upload")  # video names that get a suffix


@dataclass
class Job:
    id: str
    name: str  # the video's name (file stem), as in the output file names
    state: str = "queued"
    frames_done: int = 0
    frames_declared: int = 0
    error: str | None = None
    created: float = field(default_factory=time.time)
    # kind -> file name in the job folder: "preview", "result", "record" (<video>.json), and per
    # person "csv:<person>", "png:<person>", "txt:<person>" or "txt_<track>:<person>"
    outputs: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict:
        return asdict(self)


class JobRunner:
    """Runs the uploaded videos' jobs under ``root``, one at a time, the model run as
    ``settings`` say (``stride`` None: the checkpoint's ``data.eval_stride``)."""

    def __init__(
        self,
        checkpoint: Path | str,
        root: Path,
        options: FaceOptions | None = None,
        settings: InferenceSettings | None = None,
        keep: int = 20,
    ):
        settings = settings or InferenceSettings()
        self.model, config = load_model(checkpoint)
        self.model.au_thresholds = load_au_thresholds(checkpoint)  # used by the predictions
        if self.model.backbone is None:
            raise InputError(
                "this checkpoint has no backbone and cannot predict from video", checkpoint
            )
        warn_if_toy(self.model)  # once, when the server starts
        self.model_fields = model_fields(self.model)
        self.tasks = tuple(getattr(self.model.head, "tasks", ("expr",)))  # the model's tracks
        self.device = pick_device(settings.device)
        self.model.to(self.device).eval()
        self.backbone = BackboneRunner(
            self.model.backbone,
            self.device,
            engine_beside_faces(settings.engine),
            settings.batch_size,
        )
        self.options = options or FaceOptions()
        self.options.size = config.data.image_size
        self.seq_len = config.data.seq_len
        # stride resolved for the checkpoint, the device picked once for every job
        self.settings = replace(checkpoint_settings(settings, config), device=str(self.device))
        self.keep, self.root = keep, root
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="abaw-expr-jobs", daemon=True)
        self._worker.start()

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def submit(self, name: str, save) -> Job:
        """A new job for a video called ``name``; ``save(path)`` stores the upload there."""
        stem = Path(name).stem
        if stem in RESERVED:  # its <video>.json or its copy would overwrite the job's own files
            stem += "_video"
        job = Job(uuid.uuid4().hex, stem)
        folder = self.folder(job.id)
        folder.mkdir(parents=True)
        save(folder / f"upload{Path(name).suffix.lower()}")
        with self._lock:
            self.jobs[job.id] = job
            self._forget_old()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=30)

    def _forget_old(self) -> None:
        done = sorted(
            (j for j in self.jobs.values() if j.state in ("done", "failed")),
            key=lambda j: j.created,
        )
        for job in done[: max(len(self.jobs) - self.keep, 0)]:
            del self.jobs[job.id]
            shutil.rmtree(self.folder(job.id), ignore_errors=True)

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            job = self.jobs[job_id]
            try:
                self._run(job)
            except InputError as err:
                job.state, job.error = "failed", str(err).replace(str(self.root), "")
            except Exception as err:  # a bad upload must not stop the server
                log.exception("job %s failed", job.id)
                job.state, job.error = "failed", f"{type(err).__name__}: {err}"

    def _run(self, job: Job) -> None:
        folder = self.folder(job.id)
        upload = next(folder.glob("upload.*"))
        video = folder / f"{job.name}{upload.suffix}"
        upload.rename(video)
        job.state = "running"

        def progress(number: int, declared: int) -> None:
            job.frames_done, job.frames_declared = number, declared

        preview = PreviewEncoder(folder / PREVIEW, max_width=PREVIEW_WIDTH)
        try:  # every person, as predict --video follows them; --faces one: the subject
            predict = predict_people if self.options.faces == "all" else predict_video
            predictions = predict(
                self.model, video, self.options, self.seq_len, self.settings,
                on_frame=progress, runner=self.backbone,
                on_image=lambda frame: preview.add(frame.rgb, frame.time_s),
            )  # fmt: skip
            if not isinstance(predictions, list):
                predictions = [predictions]
            job.state = "finishing"
            for prediction in predictions:
                write_outputs(prediction, folder)
            write_record(predictions, video, folder, self.options, self.model_fields)
        except BaseException:
            preview.abort()
            raise
        preview.close()
        record = record_path(folder, job.name)  # served: no server paths in it
        atomic_write_json(record, {**json.loads(record.read_text()), "source": video.name})
        people = [
            {"name": p.name, "track": p.faces.track, "colour": person_colour(k),
             "files": person_files(p), **result_tracks(p, shared=False)}
            for k, p in enumerate(predictions)
        ]  # fmt: skip
        result = {
            "name": job.name,
            "width": preview.source_size[0],  # the boxes' pixels; the preview may be smaller
            "height": preview.source_size[1],
            **result_tracks(predictions[0], person=False),
            "people": people,
            **self.model_fields,  # the page shows model_warning as a banner
        }
        # compact: long videos give long per-frame lists, and the page loads the whole file
        atomic_write_text(folder / RESULT, json.dumps(result, separators=(",", ":")))
        job.outputs = {
            **{f"{kind}:{p['name']}": f for p in people for kind, f in p["files"].items()},
            "record": record.name,
            "preview": PREVIEW,
            "result": RESULT,
        }
        job.state = "done"


def person_files(prediction: VideoPrediction) -> dict[str, str]:
    """One person's downloads by kind: ``csv``, ``png`` and their ABAW txt files (``txt`` for
    the expression track alone, as always; other checkpoints: ``txt_<track>``)."""
    txt = submission_files(prediction)
    if prediction.tasks == ("expr",):
        txt = {"txt": txt["expr"]}
    else:
        txt = {f"txt_{task}": path for task, path in txt.items()}
    return {"csv": f"{prediction.name}.csv", **txt, "png": f"{prediction.name}.png"}


def result_tracks(prediction: VideoPrediction, shared: bool = True, person: bool = True) -> dict:
    """The per-frame part of ``result.json``. What the video's people share (``shared``): the
    checkpoint's ``tasks``, ``fps``, ``time_s``, ``classes`` (with the expression track) and
    ``aus`` (the AU names, with the AU track). What is the person's own (``person``): ``face``
    (0/1), ``box`` and their tracks: ``label`` and ``probabilities`` for the expression track,
    ``valence`` and ``arousal`` for VA, ``au`` (0/1 per frame and AU) and ``au_probabilities``
    for AU. ``result.json`` holds the shared part once and each person's part in ``people``."""
    faces = prediction.faces
    out: dict = {}
    if shared:
        out["tasks"] = list(prediction.tasks)
        out["fps"] = faces.info.fps
        out["time_s"] = np.round(faces.time_s, 4).tolist()
        if prediction.labels is not None:
            out["classes"] = list(CLASS_NAMES)
        if prediction.aus is not None:
            out["aus"] = list(AU_NAMES)
    if not person:
        return out
    out["face"] = faces.has_face.astype(int).tolist()
    if prediction.labels is not None:
        out["label"] = prediction.labels.tolist()
        out["probabilities"] = np.round(prediction.probabilities, 4).tolist()
    if prediction.va is not None:
        out["valence"] = np.round(prediction.va[:, 0], 4).tolist()
        out["arousal"] = np.round(prediction.va[:, 1], 4).tolist()
    if prediction.aus is not None:
        out["au"] = prediction.aus.tolist()
        out["au_probabilities"] = np.round(prediction.au_probabilities, 4).tolist()
    # x0, y0, x1, y1; NaN (None) in the frames without the person's face
    out["box"] = [None if np.isnan(b[0]) else np.round(b, 1).tolist() for b in faces.boxes]
    return out
