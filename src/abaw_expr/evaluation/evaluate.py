"""``evaluate`` (a labelled split) and ``predict`` (a test list): ABAW files for every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import (
    format_task_file,
    list_label_files,
    parse_task_file,
    read_task_file,
    warn_absent_classes,
    write_labels,
)
from abaw_expr.data.frame_index import FrameIndex, build_split_index, build_test_index
from abaw_expr.data.mtl import (
    build_mtl_index,
    build_mtl_test_index,
    is_mtl_file,
    is_mtl_test_list,
    read_mtl,
    read_mtl_test_list,
    split_of_file,
)
from abaw_expr.data.task_index import build_task_index
from abaw_expr.errors import InputError
from abaw_expr.evaluation.compound_file import format_compound_file
from abaw_expr.evaluation.metrics import binary_f1, task_scores
from abaw_expr.evaluation.mtl import SUBMISSION, format_mtl_predictions, score_mtl
from abaw_expr.evaluation.submission import format_submission
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.inference.compound import (
    compound_classes,
    expression_probabilities,
    require_expression_head,
)
from abaw_expr.inference.device import pick_device
from abaw_expr.inference.probabilities import predict_probabilities
from abaw_expr.inference.provenance import warn_if_toy
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.inference.thresholds import au_thresholds_file, load_au_thresholds
from abaw_expr.model.temporal import task_slices
from abaw_expr.tasks import AU, AU_NAMES, TASKS
from abaw_expr.writers import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


def predict_index(
    checkpoint: Path | str,
    build_index: Callable[[], FrameIndex],
    settings: InferenceSettings,
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
        stride=settings.stride or config.data.eval_stride,
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        device=pick_device(settings.device),
        smooth=settings.smooth,
        progress=True,
        engine=settings.engine,
    )


def task_predictions(
    values: np.ndarray, tasks, task: str, au_thresholds: np.ndarray | None = None
) -> np.ndarray:
    """One track's ABAW predictions from a video's per-frame values (see
    :func:`~abaw_expr.inference.probabilities.frame_values`): the expression class, valence and arousal,
    or each AU at a probability of its threshold or more (0.5 unless fitted)."""
    part = values[..., task_slices(tasks)[task]] if tuple(tasks) != ("expr",) else values
    if task == "expr":
        return part.argmax(-1)
    if task == "va":
        return np.clip(part, -1, 1)
    thresholds = 0.5 if au_thresholds is None else au_thresholds
    return (part >= thresholds).astype(np.int8)


def fit_au_thresholds(truth: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per AU, the threshold on a grid 0.05, 0.10, ..., 0.95 with the best F1 on the
    annotated frames (the lowest such threshold on a tie)."""
    keep = AU.annotated(truth)
    truth, probabilities = truth[keep] == 1, probabilities[keep]
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    best = np.full(truth.shape[1], 0.5)
    for unit in range(truth.shape[1]):
        f1 = [
            binary_f1(truth[:, unit : unit + 1], probabilities[:, unit : unit + 1] >= t)[0]
            for t in grid
        ]
        best[unit] = grid[int(np.argmax(f1))]
    return best


def write_predictions(
    out_dir: Path,
    index: FrameIndex,
    probabilities: list[np.ndarray],
    tasks=("expr",),
    au_thresholds: np.ndarray | None = None,
) -> None:
    """ABAW's submission files in both layouts. A checkpoint of the expression track alone
    writes one file per video in ``out_dir`` (header, one label per frame), as ABAW3 asks, and
    the later editions' one file ``out_dir/expr.csv`` (``image_location,...``). A checkpoint of
    other tracks writes, for each, ``out_dir/<track>/<video>.txt`` and ``out_dir/<track>.csv``."""
    tasks = tuple(tasks)
    if tasks == ("expr",):
        labels = {
            video.name: probs.argmax(1) for video, probs in zip(index, probabilities, strict=True)
        }
        for name, predicted in labels.items():
            write_labels(out_dir / f"{name}.txt", predicted)
        atomic_write_text(out_dir / "expr.csv", format_submission(TASKS["expr"], labels))
        return
    for task_name in tasks:
        task = TASKS[task_name]
        per_video = {
            video.name: task_predictions(values, tasks, task_name, au_thresholds)
            for video, values in zip(index, probabilities, strict=True)
        }
        for name, predicted in per_video.items():
            atomic_write_text(
                out_dir / task_name / f"{name}.txt", format_task_file(task, predicted)
            )
        atomic_write_text(out_dir / f"{task_name}.csv", format_submission(task, per_video))


def evaluate(
    checkpoint: Path | str,
    images_dir: Path | str,
    split_dir: Path | str,
    out_dir: Path | str,
    settings: InferenceSettings | None = None,
    fit_thresholds: bool = False,
) -> dict:
    """Predict every frame of a labelled split, write the prediction files and ``metrics.json``.
    ``settings``: how the model runs (default :class:`InferenceSettings`'s).

    The metric covers every annotated frame, with or without a face image, exactly as
    ``abaw-expr score`` computes it on the written files. AUs are on at the checkpoint's fitted
    thresholds if it has them, else at 0.5; ``fit_thresholds`` (an AU split) first fits one
    per AU on this split and saves them beside the checkpoint, for ``predict``: the score is
    then optimistic, as the thresholds were tuned on the frames it is measured on.
    """
    if is_mtl_file(split_dir):
        if fit_thresholds:
            raise InputError("--fit-au-thresholds needs a split of the AU track", split_dir)
        return evaluate_mtl(checkpoint, images_dir, split_dir, out_dir, settings)
    out_dir = Path(out_dir)
    label_files = list_label_files(split_dir)
    task, _ = read_task_file(label_files[0])
    loaded = load_model(checkpoint)
    tasks = loaded[1].model.tasks
    if task.name not in tasks:
        raise InputError(
            f"{task.title} annotations, but the checkpoint predicts {', '.join(tasks)}", split_dir
        )
    if task.name == "expr":
        build = lambda: build_split_index(images_dir, split_dir)  # noqa: E731
    else:  # the split of one track, read as a merged index of that track alone
        build = lambda: build_task_index(  # noqa: E731
            images_dir, {task.name: {Path(split_dir).name: Path(split_dir)}}
        )[Path(split_dir).name]
    index, probabilities = predict_index(checkpoint, build, settings or InferenceSettings(), loaded)
    thresholds = load_au_thresholds(checkpoint)
    if fit_thresholds:
        if task.name != "au":
            raise InputError("--fit-au-thresholds needs a split of the AU track", split_dir)
        probs = np.concatenate([p[..., task_slices(tasks)["au"]] for p in probabilities])
        thresholds = fit_au_thresholds(np.concatenate([v.au for v in index]), probs)
        fitted = {
            "thresholds": dict(zip(AU_NAMES, thresholds.tolist(), strict=True)),
            "fitted_on": str(split_dir),
        }
        atomic_write_json(au_thresholds_file(checkpoint), fitted)
    predictions_dir = out_dir / "predictions"
    predicted = []
    for video, values in zip(index, probabilities, strict=True):
        text = format_task_file(task, task_predictions(values, tasks, task.name, thresholds))
        atomic_write_text(predictions_dir / f"{video.name}.txt", text)
        # scored as written (valence and arousal to 6 digits), so evaluate = score exactly
        predicted.append(parse_task_file(text, video.name, prediction=True)[1])
    labels = {"expr": lambda v: v.labels, "va": lambda v: v.va, "au": lambda v: v.au}[task.name]
    truth = np.concatenate([labels(v) for v in index])
    if task.name == "expr":
        warn_absent_classes(truth, str(split_dir))
    metrics = task_scores(task.name, truth, np.concatenate(predicted))
    metrics["videos"] = len(index)
    metrics["checkpoint"] = str(checkpoint)
    if task.name == "au":
        metrics["au_thresholds"] = (
            "0.5" if thresholds is None else dict(zip(AU_NAMES, thresholds.tolist(), strict=True))
        )
        if fit_thresholds:
            metrics["au_thresholds_fitted_here"] = True  # an optimistic score
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def predict_test_set(
    checkpoint: Path | str,
    images_dir: Path | str,
    videos_list: Path | str,
    out_dir: Path | str,
    settings: InferenceSettings | None = None,
    compound: bool = False,
) -> int:
    """Submission files for every frame of every listed video; returns the number of videos.
    ``settings``: how the model runs (default :class:`InferenceSettings`'s). A list of images
    (the multi-task challenge's) gets its one submission file, :func:`predict_mtl`.
    ``compound``: also ``out_dir/compound.csv``, C-EXPR-DB's file
    (:mod:`abaw_expr.inference.compound`'s rule)."""
    if is_mtl_test_list(videos_list):
        if compound:
            raise InputError(
                "--compound takes a list of videos, not the multi-task challenge's list of images",
                videos_list,
            )
        return predict_mtl(checkpoint, images_dir, videos_list, out_dir, settings)
    loaded = load_model(checkpoint)
    warn_if_toy(loaded[0])
    if compound:
        require_expression_head(loaded[1].model.tasks, checkpoint)
    index, probabilities = predict_index(
        checkpoint,
        lambda: build_test_index(images_dir, videos_list),
        settings or InferenceSettings(),
        loaded,
    )
    tasks = loaded[1].model.tasks
    write_predictions(Path(out_dir), index, probabilities, tasks, load_au_thresholds(checkpoint))
    if compound:
        classes = {
            video.name: compound_classes(expression_probabilities(values, tasks))
            for video, values in zip(index, probabilities, strict=True)
        }
        atomic_write_text(Path(out_dir) / "compound.csv", format_compound_file(classes))
    return len(index)


# The multi-task challenge (its files: data/mtl.py, evaluation/mtl.py)


def _checked_model(checkpoint: Path | str) -> tuple:
    loaded = load_model(checkpoint)
    tasks = tuple(loaded[1].model.tasks)
    if not {"expr", "va", "au"} <= set(tasks):
        raise InputError(
            f"the multi-task challenge needs a model of expr, va and au; this one predicts "
            f"{', '.join(tasks)}",
            checkpoint,
        )
    return loaded, tasks


def _rows(index: FrameIndex, values: list[np.ndarray], tasks, thresholds) -> dict:
    """(video, frame) -> (va, expr, au) at every frame of the index that has an image."""
    out = {}
    for video, v in zip(index, values, strict=True):
        va, expr, au = (task_predictions(v, tasks, t, thresholds) for t in ("va", "expr", "au"))
        for frame in np.flatnonzero(video.has_image):
            out[(video.name, int(frame))] = (va[frame], expr[frame], au[frame])
    return out


def evaluate_mtl(
    checkpoint: Path | str,
    images_dir: Path | str,
    annotations: Path | str,
    out_dir: Path | str,
    settings: InferenceSettings | None = None,
) -> dict:
    """Predict every row of an MTL annotation file; write ``out_dir/predictions/mtl.csv`` in
    its order and ``metrics.json`` with P_MTL, scored on the file as written."""
    loaded, tasks = _checked_model(checkpoint)
    split = split_of_file(Path(annotations))
    build = lambda: build_mtl_index(images_dir, {split: Path(annotations)}, tasks)[split]  # noqa: E731
    index, values = predict_index(checkpoint, build, settings or InferenceSettings(), loaded)
    predicted = _rows(index, values, tasks, load_au_thresholds(checkpoint))
    order = [(v, f) for v, rows in read_mtl(annotations).items() for f in rows.frames]
    written = Path(out_dir) / "predictions" / SUBMISSION
    atomic_write_text(
        written, format_mtl_predictions([(v, f, *predicted[(v, f)]) for v, f in order])
    )
    metrics = score_mtl(written, annotations)
    metrics["checkpoint"] = str(checkpoint)
    atomic_write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def predict_mtl(
    checkpoint: Path | str,
    images_dir: Path | str,
    list_file: Path | str,
    out_dir: Path | str,
    settings: InferenceSettings | None = None,
) -> int:
    """``out_dir/mtl.csv``: the submission for every image of an MTL test list, in its order;
    returns the number of rows."""
    loaded, tasks = _checked_model(checkpoint)
    warn_if_toy(loaded[0])
    build = lambda: build_mtl_test_index(images_dir, list_file)  # noqa: E731
    index, values = predict_index(checkpoint, build, settings or InferenceSettings(), loaded)
    predicted = _rows(index, values, tasks, load_au_thresholds(checkpoint))
    order = [(v, f) for v, f, _ in read_mtl_test_list(list_file)]
    atomic_write_text(
        Path(out_dir) / SUBMISSION,
        format_mtl_predictions([(v, f, *predicted[(v, f)]) for v, f in order]),
    )
    return len(order)
