"""``evaluate`` (a labelled split) and ``predict`` (a test list): ABAW files for every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model
from .data.annotations import list_label_files, write_labels
from .data.frame_index import FrameIndex, build_split_index, build_test_index
from .data.submission import format_submission
from .data.track_index import build_tracks_index
from .data.tracks import TRACKS, format_track_file, parse_track_file, read_track_file
from .errors import InputError
from .inference import predict_probabilities
from .metrics import track_scores, warn_absent_classes
from .model.temporal import task_slices
from .writers import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _predict_index(
    checkpoint: Path | str,
    build_index: Callable[[], FrameIndex],
    stride: int | None,
    smooth: int,
    device: str,
    batch_size: int,
    num_workers: int,
    engine: str = "auto",
    loaded: tuple | None = None,
) -> tuple[FrameIndex, list[np.ndarray]]:
    model, config = loaded or load_model(checkpoint)
    if model.backbone is None:
        raise InputError(
            "this checkpoint has no backbone and cannot predict from images", checkpoint
        )
    index = build_index()  # after the checkpoint: a bad one fails before any data is read
    return index, predict_probabilities(
        model,
        index,
        seq_len=config.data.seq_len,
        image_size=config.data.image_size,
        stride=stride or config.data.eval_stride,
        batch_size=batch_size,
        num_workers=num_workers,
        device=pick_device(device),
        smooth=smooth,
        progress=True,
        engine=engine,
    )


def track_predictions(values: np.ndarray, tasks, track: str) -> np.ndarray:
    """One track's ABAW predictions from a video's per-frame values (see
    :func:`~abaw_expr.inference.frame_values`): the expression class, valence and arousal,
    or each AU at a probability of 0.5 or more."""
    part = values[..., task_slices(tasks)[track]] if tuple(tasks) != ("expr",) else values
    if track == "expr":
        return part.argmax(-1)
    if track == "va":
        return np.clip(part, -1, 1)
    return (part >= 0.5).astype(np.int8)


def write_predictions(
    out_dir: Path, index: FrameIndex, probabilities: list[np.ndarray], tasks=("expr",)
) -> None:
    """ABAW's submission files. A checkpoint of the expression track alone writes one file per
    video in ``out_dir`` (header, one label per frame), as ABAW3 asks. A checkpoint of other
    tracks writes, for each, ``out_dir/<track>/<video>.txt`` and the later editions' one file
    ``out_dir/<track>.csv`` (``image_location,...``)."""
    tasks = tuple(tasks)
    if tasks == ("expr",):
        for video, probs in zip(index, probabilities, strict=True):
            write_labels(out_dir / f"{video.name}.txt", probs.argmax(1))
        return
    for track_name in tasks:
        track = TRACKS[track_name]
        per_video = {
            video.name: track_predictions(values, tasks, track_name)
            for video, values in zip(index, probabilities, strict=True)
        }
        for name, predicted in per_video.items():
            atomic_write_text(
                out_dir / track_name / f"{name}.txt", format_track_file(track, predicted)
            )
        atomic_write_text(out_dir / f"{track_name}.csv", format_submission(track, per_video))


def evaluate(
    checkpoint: Path | str,
    images_dir: Path | str,
    split_dir: Path | str,
    out_dir: Path | str,
    stride: int | None = None,
    smooth: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    engine: str = "auto",
) -> dict:
    """Predict every frame of a labelled split, write the prediction files and ``metrics.json``.

    The metric covers every annotated frame, with or without a face image, exactly as
    ``abaw-expr score`` computes it on the written files.
    """
    out_dir = Path(out_dir)
    label_files = list_label_files(split_dir)
    track, _ = read_track_file(label_files[0])
    loaded = load_model(checkpoint)
    tasks = loaded[1].model.tasks
    if track.name not in tasks:
        raise InputError(
            f"{track.title} annotations, but the checkpoint predicts {', '.join(tasks)}", split_dir
        )
    if track.name == "expr":
        build = lambda: build_split_index(images_dir, split_dir)  # noqa: E731
    else:  # the split of one track, read as a merged index of that track alone
        build = lambda: build_tracks_index(  # noqa: E731
            images_dir, {track.name: {Path(split_dir).name: Path(split_dir)}}
        )[Path(split_dir).name]
    index, probabilities = _predict_index(
        checkpoint, build, stride, smooth, device, batch_size, num_workers, engine, loaded
    )
    predictions_dir = out_dir / "predictions"
    predicted = []
    for video, values in zip(index, probabilities, strict=True):
        text = format_track_file(track, track_predictions(values, tasks, track.name))
        atomic_write_text(predictions_dir / f"{video.name}.txt", text)
        # scored as written (valence and arousal to 6 digits), so evaluate = score exactly
        predicted.append(parse_track_file(text, video.name, prediction=True)[1])
    labels = {"expr": lambda v: v.labels, "va": lambda v: v.va, "au": lambda v: v.au}[track.name]
    truth = np.concatenate([labels(v) for v in index])
    if track.name == "expr":
        warn_absent_classes(truth, str(split_dir))
    metrics = track_scores(track.name, truth, np.concatenate(predicted))
    metrics["videos"] = len(index)
    metrics["checkpoint"] = str(checkpoint)
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def predict_test_set(
    checkpoint: Path | str,
    images_dir: Path | str,
    videos_list: Path | str,
    out_dir: Path | str,
    stride: int | None = None,
    smooth: int = 0,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    engine: str = "auto",
) -> int:
    """Submission files for every frame of every listed video; returns the number of videos."""
    loaded = load_model(checkpoint)
    index, probabilities = _predict_index(
        checkpoint,
        lambda: build_test_index(images_dir, videos_list),
        stride,
        smooth,
        device,
        batch_size,
        num_workers,
        engine,
        loaded,
    )
    write_predictions(Path(out_dir), index, probabilities, loaded[1].model.tasks)
    return len(index)
