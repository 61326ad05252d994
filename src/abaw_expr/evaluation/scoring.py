"""Score ABAW prediction files against one split's annotation files (``abaw-expr score``).

The track (expression, valence-arousal or action units) is told by the annotation files'
header. Predictions come in either submission layout: a folder of ``<video>.txt`` with the
track's header (ABAW3), or one file ``image_location,<columns>`` with a row per frame image
(later editions). A multi-task challenge annotation file is scored with P_MTL (:mod:`.mtl`), a
labels *file* in the C-EXPR-DB layout as compound expressions (:mod:`.compound_file`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import list_label_files, read_task_file, read_utf8
from abaw_expr.data.mtl import is_mtl_file
from abaw_expr.errors import InputError
from abaw_expr.evaluation.compound_file import is_compound_file, score_compound
from abaw_expr.evaluation.metrics import task_scores
from abaw_expr.evaluation.mtl import score_mtl
from abaw_expr.evaluation.submission import is_submission_header, parse_submission
from abaw_expr.tasks import Task, annotated

log = logging.getLogger(__name__)


def read_split_annotations(split_dir: Path | str) -> tuple[Task, dict[str, np.ndarray]]:
    """The track of a split folder's ``<video>.txt`` files (all must agree) and their labels."""
    task, labels = None, {}
    for label_file in list_label_files(split_dir):
        file_task, values = read_task_file(label_file)
        if task is not None and file_task is not task:
            raise InputError(
                f"a {file_task.title} file among {task.title} files (header "
                f"{file_task.header!r}); one split folder holds one track",
                label_file,
                1,
            )
        task = file_task
        labels[label_file.stem] = values
    return task, labels


def _per_video_predictions(
    predictions_dir: Path, task: Task, labels: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    aligned = {}
    for video, truth in labels.items():
        prediction_file = predictions_dir / f"{video}.txt"
        if not prediction_file.is_file():
            raise InputError(f"no prediction file for video {video!r}", prediction_file)
        file_task, predicted = read_task_file(prediction_file, prediction=True)
        if file_task is not task:
            raise InputError(
                f"a {file_task.title} prediction for {task.title} annotations", prediction_file, 1
            )
        if len(predicted) < len(truth):
            raise InputError(
                f"video {video!r}: {len(predicted)} predictions for {len(truth)} annotated frames",
                prediction_file,
            )
        if len(predicted) > len(truth):
            log.warning(
                "%s: %d predictions for %d frames; extra lines ignored",
                prediction_file,
                len(predicted),
                len(truth),
            )
        aligned[video] = predicted[: len(truth)]
    return aligned


def _one_file_predictions(
    prediction_file: Path, task: Task, labels: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    file_task, rows = parse_submission(
        read_utf8(prediction_file, "a prediction file"), prediction_file
    )
    if file_task is not task:
        raise InputError(
            f"{file_task.title} predictions for {task.title} annotations", prediction_file, 1
        )
    aligned = {}
    for video, truth in labels.items():
        frames = rows.get(video, {})
        needed = np.flatnonzero(annotated(task, truth))
        missing = [i + 1 for i in needed if i + 1 not in frames]
        if missing:
            raise InputError(
                f"no row for {video}/{missing[0]:05d}.jpg ({len(missing)} annotated frames of "
                f"video {video!r} have none)",
                prediction_file,
            )
        predicted = np.zeros_like(truth)
        for i in needed:
            predicted[i] = frames[i + 1]
        aligned[video] = predicted
    unknown = sorted(set(rows) - set(labels))
    if unknown:
        log.warning(
            "%s: %d videos not in the annotations ignored (%s%s)",
            prediction_file,
            len(unknown),
            ", ".join(unknown[:3]),
            ", ..." if len(unknown) > 3 else "",
        )
    return aligned


def score_predictions(predictions: Path | str, split_dir: Path | str) -> dict:
    """The track's ABAW metric of ``predictions`` against every ``split_dir/<video>.txt``.

    Every annotated frame needs a prediction: in a folder, a ``<video>.txt`` with at least one
    line per annotation line (extra trailing lines are ignored with a warning); in one
    ``image_location`` file, a row for each annotated frame. A missing one is an
    :class:`InputError` naming the video.
    """
    predictions = Path(predictions)
    if not predictions.exists():
        raise InputError("no such folder or file", predictions)
    # C-EXPR-DB's labels are one file in the predictions' layout, scored in their own module
    if is_compound_file(split_dir) or (is_compound_file(predictions) and Path(split_dir).is_file()):
        return score_compound(predictions, split_dir)
    if is_compound_file(predictions):
        raise InputError(
            "compound-expression predictions need labels in the same layout (one file)", split_dir
        )
    if is_mtl_file(split_dir):
        if predictions.is_dir():
            raise InputError("multi-task predictions are one file (image,valence,...)", predictions)
        return score_mtl(predictions, split_dir)
    task, labels = read_split_annotations(split_dir)
    if predictions.is_dir():
        aligned = _per_video_predictions(predictions, task, labels)
    else:
        with open(predictions, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        if not is_submission_header(first):
            raise InputError(
                "a prediction file must start with 'image_location,...' (or pass the folder "
                "of <video>.txt predictions)",
                predictions,
                1,
            )
        aligned = _one_file_predictions(predictions, task, labels)
    videos = sorted(labels)
    scores = task_scores(
        task.name,
        np.concatenate([labels[v] for v in videos]),
        np.concatenate([aligned[v] for v in videos]),
    )
    scores["videos"] = len(videos)
    return scores
