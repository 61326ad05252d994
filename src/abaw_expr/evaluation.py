"""``evaluate`` (a labelled split) and ``predict`` (a test list): ABAW files for every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model
from .data.annotations import write_labels
from .data.frame_index import FrameIndex, build_split_index, build_test_index
from .errors import InputError
from .inference import predict_probabilities
from .metrics import expression_scores, warn_absent_classes
from .writers import atomic_write_json

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
) -> tuple[FrameIndex, list[np.ndarray]]:
    model, config = load_model(checkpoint)
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


def write_predictions(out_dir: Path, index: FrameIndex, probabilities: list[np.ndarray]) -> None:
    """One ABAW submission file per video: header, then one label per frame."""
    for video, probs in zip(index, probabilities, strict=True):
        write_labels(out_dir / f"{video.name}.txt", probs.argmax(1))


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
    index, probabilities = _predict_index(
        checkpoint,
        lambda: build_split_index(images_dir, split_dir),
        stride,
        smooth,
        device,
        batch_size,
        num_workers,
        engine,
    )
    predictions_dir = out_dir / "predictions"
    write_predictions(predictions_dir, index, probabilities)
    labels = np.concatenate([v.labels for v in index])
    predicted = np.concatenate([p.argmax(1) for p in probabilities])
    warn_absent_classes(labels, str(split_dir))
    metrics = expression_scores(labels, predicted)
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
    index, probabilities = _predict_index(
        checkpoint,
        lambda: build_test_index(images_dir, videos_list),
        stride,
        smooth,
        device,
        batch_size,
        num_workers,
        engine,
    )
    write_predictions(Path(out_dir), index, probabilities)
    return len(index)
