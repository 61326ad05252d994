"""Uploaded videos, processed one at a time in a background thread.

Each job lives in its own folder under one temporary root (removed when the server stops); only
the newest ``keep`` jobs are kept. A job goes ``queued`` -> ``running`` (with a frame count) ->
``finishing`` (the preview's last frames, the outputs) -> ``done``, or ``failed`` with a
one-line reason.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import load_model
from ..classes import CLASS_NAMES
from ..data.tracks import AU_NAMES
from ..errors import InputError
from ..evaluation import load_au_thresholds, pick_device
from ..inference import checked_stride
from ..model.engine import BackboneRunner, engine_beside_faces
from ..video.predict import VideoPrediction, predict_video, submission_files, write_outputs
from ..video.preview import PreviewEncoder
from ..video.tracks import FaceOptions
from ..writers import atomic_write_text

log = logging.getLogger(__name__)

PREVIEW = "preview.webm"  # VP8: what browsers play, whatever the upload's codec
PREVIEW_WIDTH = 960  # wider uploads are scaled down for the page


@dataclass
class Job:
    id: str
    name: str  # the video's name (file stem), as in the output file names
    state: str = "queued"
    frames_done: int = 0
    frames_declared: int = 0
    error: str | None = None
    created: float = field(default_factory=time.time)
    outputs: dict[str, str] = field(default_factory=dict)  # kind -> file name in the job folder

    def public(self) -> dict:
        return asdict(self)


class JobRunner:
    def __init__(
        self,
        checkpoint: Path | str,
        root: Path,
        options: FaceOptions | None = None,
        device: str = "auto",
        smooth: int = 0,
        keep: int = 20,
        engine: str = "auto",
    ):
        self.model, config = load_model(checkpoint)
        self.model.au_thresholds = load_au_thresholds(checkpoint)  # used by the predictions
        if self.model.backbone is None:
            raise InputError(
                "this checkpoint has no backbone and cannot predict from video", checkpoint
            )
        self.device = pick_device(device)
        self.model.to(self.device).eval()
        self.backbone = BackboneRunner(
            self.model.backbone, self.device, engine_beside_faces(engine)
        )
        self.options = options or FaceOptions()
        self.options.size = config.data.image_size
        self.seq_len = config.data.seq_len
        self.stride = checked_stride(config.data.eval_stride, self.seq_len)
        self.smooth, self.keep, self.root = smooth, keep, root
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="abaw-expr-jobs", daemon=True)
        self._worker.start()

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def submit(self, name: str, save) -> Job:
        """A new job for a video called ``name``; ``save(path)`` stores the upload there."""
        job = Job(uuid.uuid4().hex, Path(name).stem)
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
        try:
            prediction = predict_video(
                self.model, video, self.options, self.seq_len, self.stride, self.smooth,
                device=self.device, on_frame=progress, runner=self.backbone,
                on_image=lambda frame: preview.add(frame.rgb, frame.time_s),
            )  # fmt: skip
            job.state = "finishing"
            write_outputs(prediction, video, folder)
        except BaseException:
            preview.abort()
            raise
        preview.close()
        result = {
            "name": job.name,
            "width": preview.source_size[0],  # the boxes' pixels; the preview may be smaller
            "height": preview.source_size[1],
            **result_tracks(prediction),
        }
        atomic_write_text(folder / "result.json", json.dumps(result))
        # the expression track alone: "txt", as always; other checkpoints: "txt_<track>"
        txt = submission_files(prediction)
        if prediction.tasks == ("expr",):
            txt = {"txt": txt["expr"]}
        else:
            txt = {f"txt_{task}": path for task, path in txt.items()}
        job.outputs = {
            "csv": f"{job.name}.csv",
            **txt,
            "png": f"{job.name}.png",
            "preview": PREVIEW,
            "result": "result.json",
        }
        job.state = "done"


def result_tracks(prediction: VideoPrediction) -> dict:
    """The per-frame part of ``result.json``: times, faces, boxes and the checkpoint's tracks
    (``tasks``): ``classes``, ``label`` and ``probabilities`` for the expression track;
    ``valence`` and ``arousal`` for VA; ``aus`` (the AU names), ``au`` (0/1 per frame and AU)
    and ``au_probabilities`` for AU."""
    faces = prediction.faces
    out: dict = {
        "tasks": list(prediction.tasks),
        "fps": faces.info.fps,
        "time_s": np.round(faces.time_s, 4).tolist(),
        "face": faces.has_face.astype(int).tolist(),
    }
    if prediction.labels is not None:
        out["classes"] = list(CLASS_NAMES)
        out["label"] = prediction.labels.tolist()
        out["probabilities"] = np.round(prediction.probabilities, 4).tolist()
    if prediction.va is not None:
        out["valence"] = np.round(prediction.va[:, 0], 4).tolist()
        out["arousal"] = np.round(prediction.va[:, 1], 4).tolist()
    if prediction.aus is not None:
        out["aus"] = list(AU_NAMES)
        out["au"] = prediction.aus.tolist()
        out["au_probabilities"] = np.round(prediction.au_probabilities, 4).tolist()
    # x0, y0, x1, y1; NaN (None) in the frames without the subject's face
    out["box"] = [None if np.isnan(b[0]) else np.round(b, 1).tolist() for b in faces.boxes]
    return out
