"""From video files to a prediction for every frame.

Per video, in one streamed pass: decode, follow and align the faces (every person's, or the
subject's: ``FaceOptions.faces``), and run the
backbone on batches of aligned crops; then the temporal head over the same windows as in
training (``seq_len`` frames with a face, every ``stride``), averaged where they overlap,
optionally smoothed, and filled from the nearest face frame where there is none. Writes
``<video>.csv`` (every frame: time, face status, then the checkpoint's tracks), the ABAW
submission files, ``<video>.png`` (timeline) and, on request, ``<video>.annotated.mp4``.

What a checkpoint predicts decides the columns of ``<video>.csv`` after
``frame,time_s,face,status``:

- the expression track alone (the paper's model): ``label,expression`` and the 8 class
  probabilities by class name, exactly as before the other tracks existed;
- any other set of tracks, in the order expr, va, au, only those it has:
  ``label,expression,<8 class probabilities>``; ``valence,arousal`` (the head's tanh'd
  values averaged over windows, in [-1, 1]); ``AU1,...,AU26`` as 0/1 (an AU is on at a
  probability of 0.5 or more, as ``predict`` decides for the submission files) and then
  ``AU1_prob,...,AU26_prob``, the probabilities themselves: they show how sure each call
  is, and let a user pick other thresholds without running the model again.

The ABAW submission files follow ``predict --images``: the expression track alone writes
``<video>.txt`` (one label per frame); other checkpoints write ``<track>/<video>.txt`` for
each of their tracks, in ABAW3's per-video layout of that track.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch

from abaw_expr.data.annotations import format_task_file, write_labels
from abaw_expr.data.feature_cache import FEATURE_DIM
from abaw_expr.data.images import eval_transform
from abaw_expr.errors import InputError
from abaw_expr.evaluation.evaluate import task_predictions
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.inference.device import pick_device
from abaw_expr.inference.engine import BackboneRunner, engine_beside_faces
from abaw_expr.inference.probabilities import checked_stride, window_probabilities
from abaw_expr.inference.thresholds import load_au_thresholds
from abaw_expr.model.temporal import ExpressionModel, task_slices
from abaw_expr.report.timeline import CLASS_COLOURS, plot_timeline
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES, TASKS, VA_NAMES
from abaw_expr.video.batch import pending_videos, record_path, source_stamp
from abaw_expr.video.face_process import FacePassProcess
from abaw_expr.video.reader import read_frames
from abaw_expr.video.tracks import STATUS_NAMES, FaceOptions, VideoFaces, track_people, track_video
from abaw_expr.writers import atomic_write, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class VideoPrediction:
    """One person's per-frame values: the checkpoint's ``tasks`` side by side, as
    :func:`~abaw_expr.inference.probabilities.window_probabilities` gives them (expression probabilities,
    valence and arousal, AU probabilities). A track the checkpoint lacks reads as None."""

    name: str
    faces: VideoFaces
    values: np.ndarray  # (n, width) float32
    seconds: dict[str, float] = field(default_factory=dict)  # decode, faces, model, write
    tasks: tuple[str, ...] = ("expr",)
    au_thresholds: np.ndarray | None = None  # fitted by evaluate --fit-au-thresholds; else 0.5

    def _part(self, task: str) -> np.ndarray | None:
        if task not in self.tasks:
            return None
        if self.tasks == ("expr",):
            return self.values
        return self.values[:, task_slices(self.tasks)[task]]

    def track(self, task: str) -> np.ndarray | None:
        """The track's ABAW predictions (see :func:`~abaw_expr.evaluation.evaluate.task_predictions`)."""
        return {"expr": self.labels, "va": self.va, "au": self.aus}[task]

    def _predicted(self, task: str) -> np.ndarray | None:
        if task not in self.tasks:
            return None
        return task_predictions(self.values, self.tasks, task, self.au_thresholds)

    @property
    def probabilities(self) -> np.ndarray | None:
        """(n, 8) expression probabilities."""
        return self._part("expr")

    @cached_property
    def labels(self) -> np.ndarray | None:
        """(n,) expression class per frame."""
        return self._predicted("expr")

    @cached_property
    def va(self) -> np.ndarray | None:
        """(n, 2) valence and arousal in [-1, 1]."""
        return self._predicted("va")

    @property
    def au_probabilities(self) -> np.ndarray | None:
        """(n, 12) probability of each AU of :data:`~abaw_expr.tasks.AU_NAMES`."""
        return self._part("au")

    @cached_property
    def aus(self) -> np.ndarray | None:
        """(n, 12) int8: 1 where an AU is on."""
        return self._predicted("au")


class _BackboneBatcher:
    """Collects aligned crops and runs the backbone on every full batch, in a worker thread:
    PyTorch releases the interpreter while it computes, so the next frames are decoded and
    their faces found (single-threaded work) while a batch runs, instead of leaving a core
    idle. Batches run one at a time, in order."""

    def __init__(self, backbone: BackboneRunner, batch_size: int, device: torch.device):
        self.backbone, self.device = backbone, device
        self.batch_size = backbone.loader_batch_size(batch_size)
        self.transform = eval_transform()
        self.pending: list[np.ndarray] = []
        self.numbers: list[int] = []
        self.features: list[Future] = []
        self.seconds = 0.0
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="backbone")

    def __call__(self, number: int, crop: np.ndarray) -> None:
        self.numbers.append(number)
        self.pending.append(crop)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch = np.stack(self.pending)
        self.pending.clear()
        self.features.append(self._worker.submit(self._run, batch))

    def _run(self, crops: np.ndarray) -> torch.Tensor:
        start = time.perf_counter()
        with torch.inference_mode():
            batch = torch.from_numpy(crops).permute(0, 3, 1, 2)
            features = self.backbone(self.transform(batch))
        self.seconds += time.perf_counter() - start
        return features

    def result(self) -> tuple[np.ndarray, torch.Tensor]:
        self.flush()
        try:
            features = [f.result() for f in self.features]
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)
        frames = np.asarray(self.numbers, np.int64) - 1
        if not features:
            return frames, torch.zeros(0, FEATURE_DIM, device=self.device)
        return frames, torch.cat(features)


def _tasks(model: ExpressionModel) -> tuple[str, ...]:
    return tuple(getattr(model.head, "tasks", ("expr",)))


def predict_video(
    model: ExpressionModel,
    video: Path,
    options: FaceOptions,
    seq_len: int,
    stride: int,
    smooth: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_frame=None,
    runner: BackboneRunner | None = None,
    on_image=None,
    face_pass: FacePassProcess | None = None,
) -> VideoPrediction:
    """One video through faces, backbone and head; ``on_frame(number, declared)`` reports
    progress after each decoded frame, ``on_image(frame)`` gets each decoded frame (a preview).
    ``runner`` runs the backbone (default: eagerly); ``face_pass`` follows the faces in a
    process of its own (default: here)."""
    device = torch.device(device)
    began = time.perf_counter()
    runner = runner or BackboneRunner(model.backbone, device, "eager", batch_size)
    batcher = _BackboneBatcher(runner, batch_size, device)
    if face_pass is None:
        faces = track_video(video, options, batcher, progress, on_frame, on_image)
    elif on_image is not None:
        raise ValueError("the frames of a face pass in another process cannot be handed on")
    else:
        faces = face_pass.track(video, batcher, progress, on_frame)
    frames, features = batcher.result()
    start = time.perf_counter()
    probs = window_probabilities(
        model.head,
        features,
        frames,
        faces.num_frames,
        seq_len,
        stride,
        batch_size,
        smooth,
        name=str(video),
    )
    if not faces.has_face.any():
        log.warning("%s: no face found in any of its %d frames", video, faces.num_frames)
    seconds = {
        "decode": faces.seconds["decode"],
        "faces": faces.seconds["faces"],
        "model": batcher.seconds + time.perf_counter() - start,
        "pass": time.perf_counter() - began,  # wall time; the model overlaps the faces
    }
    return VideoPrediction(
        video.stem, faces, probs, seconds, _tasks(model), getattr(model, "au_thresholds", None)
    )


def predict_people(
    model: ExpressionModel,
    video: Path,
    options: FaceOptions,
    seq_len: int,
    stride: int,
    smooth: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_frame=None,
    runner: BackboneRunner | None = None,
    face_pass: FacePassProcess | None = None,
    on_image=None,
) -> list[VideoPrediction]:
    """Every person of one video (see :func:`..tracks.track_people`), each predicted as
    :func:`predict_video` predicts the subject: one :class:`VideoPrediction` per person.
    ``on_image(frame)`` gets each decoded frame (a preview), as in :func:`predict_video`."""
    device = torch.device(device)
    began = time.perf_counter()
    runner = runner or BackboneRunner(model.backbone, device, "eager", batch_size)
    batchers: dict[int, _BackboneBatcher] = {}

    def on_face(track: int, number: int, crop: np.ndarray) -> None:
        if track not in batchers:
            batchers[track] = _BackboneBatcher(runner, batch_size, device)
        batchers[track](number, crop)

    if face_pass is None:
        people = track_people(video, options, on_face, progress, on_frame, on_image)
    elif on_image is not None:
        raise ValueError("the frames of a face pass in another process cannot be handed on")
    else:
        people = face_pass.track(video, on_face, progress, on_frame)
    results = [b.result() for b in batchers.values()]
    by_track = dict(zip(batchers, results, strict=True))
    model_seconds = sum(b.seconds for b in batchers.values())
    predictions = []
    for faces, tracks in people:
        start = time.perf_counter()
        parts = [by_track[t] for t in tracks if t in by_track]
        frames = np.concatenate([f for f, _ in parts]) if parts else np.zeros(0, np.int64)
        features = (
            torch.cat([x for _, x in parts])
            if parts
            else torch.zeros(0, FEATURE_DIM, device=device)
        )
        # this person's frames only: a track cut in two (split_mixed_tracks) serves two people
        order = np.argsort(frames, kind="stable")
        order = order[faces.has_face[frames[order]]]
        probs = window_probabilities(
            model.head,
            features[torch.from_numpy(order).to(features.device)],
            frames[order],
            faces.num_frames,
            seq_len,
            stride,
            batch_size,
            smooth,
            name=str(video),
        )
        model_seconds += time.perf_counter() - start
        predictions.append(
            VideoPrediction(
                faces.name,
                faces,
                probs,
                tasks=_tasks(model),
                au_thresholds=getattr(model, "au_thresholds", None),
            )
        )
    if not people[0][0].has_face.any():
        log.warning("%s: no face found in any of its %d frames", video, people[0][0].num_frames)
    for prediction in predictions:  # the stages of the whole pass, shared by its people
        prediction.seconds = {
            "decode": people[0][0].seconds["decode"],
            "faces": people[0][0].seconds["faces"],
            "model": model_seconds,
            "pass": time.perf_counter() - began,  # wall time; the model overlaps the faces
        }
    return predictions


AU_PROBABILITY_COLUMNS = tuple(f"{name}_prob" for name in AU_NAMES)


def prediction_columns(tasks) -> list[str]:
    """The header of ``<video>.csv`` for a checkpoint of ``tasks`` (see the module's text)."""
    columns = ["frame", "time_s", "face", "status"]
    if "expr" in tasks:
        columns += ["label", "expression", *CLASS_NAMES]
    if "va" in tasks:
        columns += list(VA_NAMES)
    if "au" in tasks:
        columns += [*AU_NAMES, *AU_PROBABILITY_COLUMNS]
    return columns


def prediction_csv(prediction: VideoPrediction) -> str:
    faces = prediction.faces
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(prediction_columns(prediction.tasks))
    labels, probs = prediction.labels, prediction.probabilities
    va, aus, au_probs = prediction.va, prediction.aus, prediction.au_probabilities
    for i in range(faces.num_frames):
        row = [
            i + 1,
            f"{faces.time_s[i]:.4f}",
            int(faces.has_face[i]),
            STATUS_NAMES[int(faces.status[i])],
        ]
        if labels is not None:
            row += [int(labels[i]), CLASS_NAMES[labels[i]], *(f"{p:.5f}" for p in probs[i])]
        if va is not None:
            row += [f"{v:.5f}" for v in va[i]]
        if aus is not None:
            row += [*(int(a) for a in aus[i]), *(f"{p:.5f}" for p in au_probs[i])]
        writer.writerow(row)
    return buffer.getvalue()


def submission_files(prediction: VideoPrediction) -> dict[str, str]:
    """The ABAW submission files of one prediction, by their path under the output folder:
    ``<video>.txt`` for the expression track alone, else ``<track>/<video>.txt`` per track."""
    name = prediction.name
    if prediction.tasks == ("expr",):
        return {"expr": f"{name}.txt"}
    return {task: f"{task}/{name}.txt" for task in prediction.tasks}


def write_outputs(
    prediction: VideoPrediction, video: Path, out_dir: Path, annotated_video: bool = False
) -> None:
    start = time.perf_counter()
    name = prediction.name
    atomic_write_text(out_dir / f"{name}.csv", prediction_csv(prediction))
    for task, path in submission_files(prediction).items():
        if prediction.tasks == ("expr",):
            write_labels(out_dir / path, prediction.labels)
        else:
            text = format_task_file(TASKS[task], prediction.track(task))
            atomic_write_text(out_dir / path, text)
    status = prediction.faces.has_face
    title = f"{name}: {int(status.sum())} of {len(status)} frames with a face"
    plot_timeline(
        out_dir / f"{name}.png",
        prediction.faces.time_s,
        prediction.probabilities,
        status,
        title,
        va=prediction.va,
        aus=prediction.aus,
    )
    if annotated_video:
        write_annotated_video(prediction, video, out_dir / f"{name}.annotated.mp4")
    prediction.seconds["write"] = time.perf_counter() - start


def _hex_to_bgr(colour: str) -> tuple[int, int, int]:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def frame_caption(prediction: VideoPrediction, i: int) -> tuple[list[str], str]:
    """What the annotated video writes by frame ``i``'s face, one line per track, and its
    colour (hex): the expression and its probability, valence and arousal, the AUs on."""
    parts, colour = [], "#f2f2f2"
    if prediction.labels is not None:
        label = int(prediction.labels[i])
        parts.append(f"{CLASS_NAMES[label]} {prediction.probabilities[i, label]:.2f}")
        colour = CLASS_COLOURS[label]
    if prediction.va is not None:
        valence, arousal = prediction.va[i]
        parts.append(f"V {valence:+.2f} A {arousal:+.2f}")
    if prediction.aus is not None:
        on = [name for name, a in zip(AU_NAMES, prediction.aus[i], strict=True) if a]
        parts.append(" ".join(on) if on else "no AU")
    return parts, colour


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.65, 4)[0][0]


def _caption(image: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    """Text with a dark outline, readable on any background."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, text, origin, font, 0.65, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, 0.65, colour, 2, cv2.LINE_AA)


def write_annotated_video(
    prediction: VideoPrediction, video: Path, path: Path, max_width: int = 0
) -> None:
    """A copy of ``video`` with the subject's box and predictions drawn on (a second decode).

    ``.mp4`` is written as MPEG-4 Part 2, ``.webm`` as VP8 (what browsers play);
    ``max_width`` scales wider videos down."""
    fourcc = "VP80" if path.suffix.lower() == ".webm" else "mp4v"
    faces = prediction.faces
    fps = faces.info.fps or 25.0

    def write(tmp: Path) -> None:
        writer = None
        try:
            for frame in read_frames(video):
                i = frame.number - 1
                if i >= faces.num_frames:
                    break
                bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
                if writer is None:
                    height, width = bgr.shape[:2]
                    size = (width, height)
                    if max_width and width > max_width:
                        size = (max_width, round(height * max_width / width / 2) * 2)
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {fourcc} video to {tmp}")
                (text, *more), hex_colour = frame_caption(prediction, i)
                colour = _hex_to_bgr(hex_colour)
                if faces.has_face[i]:
                    x0, y0, x1, y1 = (int(round(v)) for v in faces.boxes[i])
                    cv2.rectangle(bgr, (x0, y0), (x1, y1), colour, 2)
                    _caption(bgr, text, (x0, max(y0 - 8, 18)), colour)
                    # the other tracks under the box, the lowest line inside the frame
                    top = min(y1 + 22, height - 6 - 22 * (len(more) - 1))
                    for k, line in enumerate(more):
                        x = max(min(x0, width - _text_width(line) - 2), 2)
                        _caption(bgr, line, (x, top + 22 * k), colour)
                else:
                    _caption(bgr, f"no face ({text})", (10, 26), (220, 220, 220))
                    for k, line in enumerate(more, start=1):
                        _caption(bgr, line, (10, 26 + 24 * k), (220, 220, 220))
                if size != (width, height):
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                writer.write(bgr)
        finally:
            if writer is not None:
                writer.release()

    atomic_write(path, write, suffix=f".tmp{path.suffix}")


@dataclass
class VideoRun:
    predictions: list[VideoPrediction]
    failed: dict[str, str]  # video file -> one-line error
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run


def frame_ranges(mask: np.ndarray) -> list[list[int]]:
    """The runs of True in ``mask`` as ``[first, last]`` 1-based frame numbers."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [[int(a) + 1, int(b)] for a, b in zip(starts, ends, strict=True)]


def write_record(
    predictions: list[VideoPrediction], video: Path, out_dir: Path, options: FaceOptions
) -> None:
    """``<video>.json``: the video's people (their output names and face frames), last."""
    faces = predictions[0].faces
    record = {
        "video": video.stem,
        "source": str(video),
        "frames": faces.num_frames,
        "fps": faces.info.fps,
        "shot_cuts": faces.cuts,  # 1-based frames that begin a new shot (faces="all")
        "people": [
            {
                "name": p.name,
                "track": p.faces.track,
                "face_frames": int(p.faces.has_face.sum()),
                "frames": frame_ranges(p.faces.has_face),
                "tracks": p.faces.tracks,  # the tracker's pieces: how each was joined, or why not
            }
            for p in predictions
        ],
        "options": asdict(options),
        **source_stamp(video),
    }
    atomic_write_json(record_path(out_dir, video.stem), record)


def predict_videos(
    checkpoint: Path | str,
    source: Path | str,
    out_dir: Path | str,
    options: FaceOptions | None = None,
    stride: int | None = None,
    smooth: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    annotated_video: bool = False,
    progress: bool = True,
    engine: str = "auto",
    shard: tuple[int, int] | None = None,
    overwrite: bool = False,
    ahead: FacePassProcess | None = None,
) -> VideoRun:
    """Predict every frame of one video or of every video in a folder (or of shard ``(K, N)``
    of them, see :mod:`.batch`).

    ``ahead``, a :class:`.face_process.FacePassProcess` over the videos that
    :func:`.batch.pending_videos` gives, started before this module (and PyTorch) was
    imported, does the face pass while the model loads and beside the backbone (the command
    does this); without it the face pass runs in this process. Closed at the end either way.

    A video that cannot be read is reported (one line naming it) and the others still
    processed; the CLI then exits non-zero. A video whose ``<video>.json`` record matches its
    file (size and time) was finished by an earlier run and is skipped, unless ``overwrite``.
    """
    options = options or FaceOptions()
    out_dir = Path(out_dir)
    videos, skipped, refused = pending_videos(source, out_dir, shard, overwrite, options.faces)
    for message in refused.values():
        log.error("%s", message)
    run = VideoRun([], refused, skipped)
    with ExitStack() as cleanup:
        if ahead is not None:
            cleanup.callback(ahead.close)
        if not videos:
            return run
        model, config = load_model(checkpoint)
        if model.backbone is None:
            raise InputError(
                "this checkpoint has no backbone and cannot predict from video", checkpoint
            )
        model.au_thresholds = load_au_thresholds(checkpoint)  # the predictions' AU thresholds
        options.size = config.data.image_size
        if ahead is not None and not ahead.serves(videos, options):
            ahead.close()  # it guessed the crop size (or the videos) wrong: start it again
            ahead = FacePassProcess(videos, options)
            cleanup.callback(ahead.close)
        torch_device = pick_device(device)
        model = model.to(torch_device).eval()
        seq_len = config.data.seq_len
        stride = checked_stride(stride or config.data.eval_stride, seq_len)
        runner = BackboneRunner(
            model.backbone, torch_device, engine_beside_faces(engine), batch_size
        )
        for video in videos:
            predict = predict_people if options.faces == "all" else predict_video
            try:
                predictions = predict(
                    model, video, options, seq_len, stride, smooth, batch_size, torch_device,
                    progress, runner=runner, face_pass=ahead,
                )  # fmt: skip
            except InputError as err:
                log.error("%s", err)
                run.failed[str(video)] = str(err)
                continue
            if not isinstance(predictions, list):
                predictions = [predictions]
            for prediction in predictions:
                write_outputs(prediction, video, out_dir, annotated_video)
            write_record(predictions, video, out_dir, options)
            run.predictions.extend(predictions)
    return run
