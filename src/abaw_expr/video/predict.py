"""From video files to a prediction for every frame.

Per video, in one streamed pass: decode, follow and align the faces (every person's, or the
subject's: ``FaceOptions.faces``), and run the
backbone on batches of aligned crops; then the temporal head over the same windows as in
training (``seq_len`` frames with a face, every ``stride``), averaged where they overlap,
optionally smoothed, and filled from the nearest face frame where there is none. How the
model runs comes in one :class:`~abaw_expr.inference.settings.InferenceSettings`, what the run
over files does beside it in one :class:`~abaw_expr.inference.settings.VideoSettings`.

:mod:`.outputs` writes the files: ``<video>.csv`` (every frame: time, face status, then the
checkpoint's tracks; its columns are described there), the ABAW submission files,
``<video>.png`` (timeline), on request ``<video>.annotated.mp4``, and ``<video>.json``.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from abaw_expr.data.images import eval_transform
from abaw_expr.errors import InputError
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.inference.compound import require_expression_head
from abaw_expr.inference.device import pick_device
from abaw_expr.inference.engine import BackboneRunner, engine_beside_faces
from abaw_expr.inference.probabilities import checked_stride, window_probabilities
from abaw_expr.inference.provenance import model_fields, warn_if_toy
from abaw_expr.inference.settings import InferenceSettings, VideoSettings
from abaw_expr.inference.thresholds import load_au_thresholds
from abaw_expr.model.temporal import ExpressionModel
from abaw_expr.video.batch import pending_videos
from abaw_expr.video.face_process import FacePassProcess
from abaw_expr.video.outputs import (
    annotated_video_path,
    write_annotated_video,
    write_outputs,
    write_record,
)
from abaw_expr.video.prediction import VideoPrediction
from abaw_expr.video.tracks import FaceOptions, VideoFaces, track_people, track_video

log = logging.getLogger(__name__)


# Every this many batches the C heap's free pages go back to the system. The crops that come
# and go between long-lived feature batches fragment it: on 1 and 10 minutes of a real clip the
# command grew by 13 KB a frame though Python held 3 MB (RESULTS.md, 2026-12-07).
TRIM_EVERY = 16


def _trim_heap() -> None:
    """glibc's ``malloc_trim(0)`` where there is one (Linux); elsewhere nothing."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


class _BackboneBatcher:
    """Collects aligned crops (of one subject, or of every track: ``track``) and runs the
    backbone on every full batch, in one worker thread: PyTorch releases the interpreter while
    it computes, so the next frames are decoded and their faces found (single-threaded work)
    while a batch runs, instead of leaving a core idle. Batches run one at a time, in order.

    Memory does not grow with the video: a crop is copied into one of ``IN_FLIGHT`` batch
    buffers, made once, and not kept; only its features (888 floats) stay, for the head. At
    most ``IN_FLIGHT`` batches wait for or run on the backbone: when the face pass runs ahead
    of it, a new batch waits for the one before the last to finish (and the face process
    waits at its pipe's bound), where before the crops of every batch submitted piled up in
    the worker's queue. The tracks of a video share the batches: a track's crops never wait
    for their track's next crops to fill a batch (an ended track kept up to a batch of them
    to the end of the video, and every track had a thread of its own). An image's features
    do not depend on the images beside it (one batch shape: :mod:`~abaw_expr.inference.engine`).
    """

    IN_FLIGHT = 2

    def __init__(self, backbone: BackboneRunner, batch_size: int, device: torch.device):
        self.backbone, self.device = backbone, device
        self.batch_size = backbone.loader_batch_size(batch_size)
        self.transform = eval_transform()
        self._buffers: list[np.ndarray] = []  # IN_FLIGHT batches, made at the first crop
        self._batches = 0  # batches submitted; the next fills buffer _batches % IN_FLIGHT
        self._filled = 0  # crops in the batch being filled
        self.numbers: list[int] = []  # every crop's frame (1-based), in order
        self.tracks: list[int] = []  # and its track
        self._running: deque[Future] = deque()
        self._features: list[torch.Tensor] = []  # of the batches done, in order
        self.seconds = 0.0
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="backbone")

    def __call__(self, number: int, crop: np.ndarray, track: int = 0) -> None:
        if not self._buffers:
            self._buffers = [
                np.empty((self.batch_size, *crop.shape), crop.dtype) for _ in range(self.IN_FLIGHT)
            ]
        self._buffers[self._batches % self.IN_FLIGHT][self._filled] = crop
        self._filled += 1
        self.numbers.append(number)
        self.tracks.append(track)
        if self._filled == self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._filled:
            return
        batch = self._buffers[self._batches % self.IN_FLIGHT][: self._filled]
        self._running.append(self._worker.submit(self._run, batch))
        self._batches += 1
        self._filled = 0
        # the next batch fills the buffer of the one before this: wait until it is done
        while len(self._running) >= self.IN_FLIGHT:
            self._features.append(self._running.popleft().result())
        if self._batches % TRIM_EVERY == 0:
            _trim_heap()

    def _run(self, crops: np.ndarray) -> torch.Tensor:
        start = time.perf_counter()
        with torch.inference_mode():
            batch = torch.from_numpy(crops).permute(0, 3, 1, 2)
            features = self.backbone(self.transform(batch))
        self.seconds += time.perf_counter() - start
        return features

    def _finish(self) -> torch.Tensor:
        """Every crop's features, in order of arrival; the worker stopped."""
        try:
            self.flush()
            while self._running:
                self._features.append(self._running.popleft().result())
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._buffers = []
        if not self._features:
            return torch.zeros(0, self.backbone.feature_dim, device=self.device)
        # into one tensor batch by batch, each batch freed once copied: torch.cat would hold
        # every feature twice at the end of a long video
        parts, total = self._features, sum(len(f) for f in self._features)
        features = parts[0].new_empty((total, parts[0].shape[1]))
        while parts:
            part = parts.pop()
            total -= len(part)
            features[total : total + len(part)] = part
        return features

    def result(self) -> tuple[np.ndarray, torch.Tensor]:
        """The 0-based frames of the crops and their features, in order of arrival."""
        features = self._finish()
        return np.asarray(self.numbers, np.int64) - 1, features

    def by_track(self) -> dict[int, tuple[np.ndarray, torch.Tensor]]:
        """:meth:`result` per track: track -> its crops' 0-based frames and features, in order
        of arrival (tracks in order of their first crop)."""
        frames, features = self.result()
        tracks = np.asarray(self.tracks, np.int64)
        if len(set(self.tracks)) == 1:  # one track: its features as they are, not a copy
            return {self.tracks[0]: (frames, features)}
        parts = {}
        for track in dict.fromkeys(self.tracks):
            mine = np.flatnonzero(tracks == track)
            parts[track] = (frames[mine], features[torch.from_numpy(mine).to(features.device)])
        return parts


def _tasks(model: ExpressionModel) -> tuple[str, ...]:
    return tuple(getattr(model.head, "tasks", ("expr",)))


def checkpoint_settings(settings: InferenceSettings, config) -> InferenceSettings:
    """``settings`` for a checkpoint of ``config``: ``stride`` its ``data.eval_stride`` where
    None, and no longer than its windows (:func:`~abaw_expr.inference.probabilities.checked_stride`)."""
    stride = checked_stride(settings.stride or config.data.eval_stride, config.data.seq_len)
    return replace(settings, stride=stride)


def _head_values(
    model: ExpressionModel,
    features: torch.Tensor,
    frames: np.ndarray,
    faces: VideoFaces,
    seq_len: int,
    settings: InferenceSettings,
    video: Path,
) -> np.ndarray:
    """The temporal head over one person's windows: their per-frame values."""
    return window_probabilities(
        model.head,
        features,
        frames,
        faces.num_frames,
        seq_len,
        settings.stride,
        settings.batch_size,
        settings.smooth,
        name=str(video),
    )


def _pass_seconds(
    video: Path, faces: VideoFaces, model_seconds: float, began: float
) -> dict[str, float]:
    """The stages of one pass over ``video`` (shared by its people); a warning where no frame
    has a face."""
    if not faces.has_face.any():
        log.warning("%s: no face found in any of its %d frames", video, faces.num_frames)
    return {
        "decode": faces.seconds["decode"],
        "faces": faces.seconds["faces"],
        "model": model_seconds,
        "pass": time.perf_counter() - began,  # wall time; the model overlaps the faces
    }


def predict_video(
    model: ExpressionModel,
    video: Path,
    options: FaceOptions,
    seq_len: int,
    settings: InferenceSettings,
    progress: bool = False,
    on_frame=None,
    runner: BackboneRunner | None = None,
    on_image=None,
    face_pass: FacePassProcess | None = None,
) -> VideoPrediction:
    """One video through faces, backbone and head, as ``settings`` say (their ``stride``
    resolved: :func:`checkpoint_settings`); ``on_frame(number, declared)`` reports progress
    after each decoded frame, ``on_image(frame)`` gets each decoded frame (a preview).
    ``runner`` runs the backbone (default: eagerly); ``face_pass`` follows the faces in a
    process of its own (default: here)."""
    device = pick_device(settings.device)
    began = time.perf_counter()
    runner = runner or BackboneRunner(model.backbone, device, "eager", settings.batch_size)
    batcher = _BackboneBatcher(runner, settings.batch_size, device)
    if face_pass is None:
        faces = track_video(video, options, batcher, progress, on_frame, on_image)
    elif on_image is not None:
        raise ValueError("the frames of a face pass in another process cannot be handed on")
    else:
        faces = face_pass.track(video, batcher, progress, on_frame)
    frames, features = batcher.result()
    start = time.perf_counter()
    probs = _head_values(model, features, frames, faces, seq_len, settings, video)
    model_seconds = batcher.seconds + time.perf_counter() - start
    seconds = _pass_seconds(video, faces, model_seconds, began)
    return VideoPrediction(
        video.stem, faces, probs, seconds, _tasks(model), getattr(model, "au_thresholds", None)
    )


def _person_features(
    faces: VideoFaces,
    parts: list[tuple[np.ndarray, torch.Tensor]],
    device: torch.device,
    width: int,
) -> tuple[torch.Tensor, np.ndarray]:
    """One person's backbone features and 0-based frames, in frame order, from the features
    of their tracks: only their own frames, as a track cut in two (split_mixed_tracks) serves
    two people."""
    if len(parts) == 1:  # no copy of the features where there is nothing to join
        frames, features = parts[0]
    else:
        frames = np.concatenate([f for f, _ in parts]) if parts else np.zeros(0, np.int64)
        features = (
            torch.cat([x for _, x in parts]) if parts else torch.zeros(0, width, device=device)
        )
    order = np.argsort(frames, kind="stable")
    order = order[faces.has_face[frames[order]]]
    if np.array_equal(order, np.arange(len(frames))):
        return features, frames
    return features[torch.from_numpy(order).to(features.device)], frames[order]


def predict_people(
    model: ExpressionModel,
    video: Path,
    options: FaceOptions,
    seq_len: int,
    settings: InferenceSettings,
    progress: bool = False,
    on_frame=None,
    runner: BackboneRunner | None = None,
    face_pass: FacePassProcess | None = None,
    on_image=None,
) -> list[VideoPrediction]:
    """Every person of one video (see :func:`.tracks.track_people`), each predicted as
    :func:`predict_video` predicts the subject: one :class:`VideoPrediction` per person.
    ``on_image(frame)`` gets each decoded frame (a preview), as in :func:`predict_video`."""
    device = pick_device(settings.device)
    began = time.perf_counter()
    runner = runner or BackboneRunner(model.backbone, device, "eager", settings.batch_size)
    batcher = _BackboneBatcher(runner, settings.batch_size, device)

    def on_face(track: int, number: int, crop: np.ndarray) -> None:
        batcher(number, crop, track)

    if face_pass is None:
        people = track_people(video, options, on_face, progress, on_frame, on_image)
    elif on_image is not None:
        raise ValueError("the frames of a face pass in another process cannot be handed on")
    else:
        people = face_pass.track(video, on_face, progress, on_frame)
    by_track = batcher.by_track()
    model_seconds = batcher.seconds
    predictions = []
    for faces, tracks in people:
        start = time.perf_counter()
        parts = [by_track[t] for t in tracks if t in by_track]
        features, frames = _person_features(faces, parts, device, model.head.feature_dim)
        probs = _head_values(model, features, frames, faces, seq_len, settings, video)
        model_seconds += time.perf_counter() - start
        thresholds = getattr(model, "au_thresholds", None)
        predictions.append(
            VideoPrediction(faces.name, faces, probs, tasks=_tasks(model), au_thresholds=thresholds)
        )
    seconds = _pass_seconds(video, people[0][0], model_seconds, began)
    for prediction in predictions:  # the stages of the whole pass, shared by its people
        prediction.seconds = dict(seconds)
    return predictions


@dataclass
class VideoRun:
    predictions: list[VideoPrediction]
    failed: dict[str, str]  # video file -> one-line error
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run


def _load_video_model(checkpoint: Path | str) -> tuple[ExpressionModel, object]:
    """The checkpoint's model and config, with its fitted AU thresholds (if any)."""
    model, config = load_model(checkpoint)
    if model.backbone is None:
        raise InputError(
            "this checkpoint has no backbone and cannot predict from video", checkpoint
        )
    model.au_thresholds = load_au_thresholds(checkpoint)  # the predictions' AU thresholds
    warn_if_toy(model)
    return model, config


def _predict_one(
    model: ExpressionModel,
    video: Path,
    options: FaceOptions,
    seq_len: int,
    settings: InferenceSettings,
    progress: bool,
    runner: BackboneRunner,
    ahead: FacePassProcess | None,
) -> list[VideoPrediction]:
    """One video's people (``FaceOptions.faces == "all"``) or subject, as a list."""
    predict = predict_people if options.faces == "all" else predict_video
    predictions = predict(
        model, video, options, seq_len, settings, progress, runner=runner, face_pass=ahead
    )
    return predictions if isinstance(predictions, list) else [predictions]


def _write_files(
    predictions: list[VideoPrediction],
    video: Path,
    out_dir: Path,
    options: FaceOptions,
    annotated_video: bool,
    model: ExpressionModel,
) -> None:
    """Every person's files and the video's one annotated copy, then the video's record (last:
    it marks the video done)."""
    for prediction in predictions:
        write_outputs(prediction, out_dir)
    if annotated_video:
        start = time.perf_counter()
        write_annotated_video(predictions, video, annotated_video_path(out_dir, video))
        for prediction in predictions:
            prediction.seconds["write"] += time.perf_counter() - start
    write_record(predictions, video, out_dir, options, model_fields(model))


def predict_videos(
    checkpoint: Path | str,
    source: Path | str,
    out_dir: Path | str,
    options: FaceOptions | None = None,
    settings: InferenceSettings | None = None,
    video_settings: VideoSettings | None = None,
    ahead: FacePassProcess | None = None,
) -> VideoRun:
    """Predict every frame of one video or of every video in a folder (or of shard ``(K, N)``
    of them, see :mod:`.batch`), the model run as ``settings`` say and the files chosen and
    written as ``video_settings`` say (the defaults of each where None).

    ``ahead``, a :class:`.face_process.FacePassProcess` over the videos that
    :func:`.batch.pending_videos` gives, started before this module (and PyTorch) was
    imported, does the face pass while the model loads and beside the backbone (the command
    does this); without it the face pass runs in this process. Closed at the end either way.

    A video that cannot be read is reported (one line naming it) and the others still
    processed; the CLI then exits non-zero. A video whose ``<video>.json`` record matches its
    file (size and time) was finished by an earlier run and is skipped, unless ``overwrite``.
    """
    options = options or FaceOptions()
    settings = settings or InferenceSettings()
    video_settings = video_settings or VideoSettings()
    out_dir = Path(out_dir)
    videos, skipped, refused = pending_videos(
        source, out_dir, video_settings.shard, video_settings.overwrite, options.faces
    )
    for message in refused.values():
        log.error("%s", message)
    run = VideoRun([], refused, skipped)
    with ExitStack() as cleanup:
        if ahead is not None:
            cleanup.callback(ahead.close)
        if not videos:
            return run
        model, config = _load_video_model(checkpoint)
        if video_settings.compound:
            require_expression_head(_tasks(model), checkpoint)
        options.size = config.data.image_size
        if ahead is not None and not ahead.serves(videos, options):
            ahead.close()  # it guessed the crop size (or the videos) wrong: start it again
            ahead = FacePassProcess(videos, options)
            cleanup.callback(ahead.close)
        torch_device = pick_device(settings.device)
        model = model.to(torch_device).eval()
        settings = replace(checkpoint_settings(settings, config), device=str(torch_device))
        engine = engine_beside_faces(settings.engine)
        runner = BackboneRunner(model.backbone, torch_device, engine, settings.batch_size)
        for video in videos:
            try:
                predictions = _predict_one(
                    model, video, options, config.data.seq_len, settings,
                    video_settings.progress, runner, ahead,
                )  # fmt: skip
            except InputError as err:
                log.error("%s", err)
                run.failed[str(video)] = str(err)
                continue
            for prediction in predictions:
                prediction.compound = video_settings.compound
            _write_files(
                predictions, video, out_dir, options, video_settings.annotated_video, model
            )
            run.predictions.extend(predictions)
    return run
