"""Score ABAW prediction files against one split's annotation files (``abaw-expr score``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .data.annotations import list_label_files, read_labels
from .errors import InputError, require_dir
from .metrics import expression_scores

log = logging.getLogger(__name__)


def score_predictions(predictions_dir: Path | str, split_dir: Path | str) -> dict:
    """Macro F1 of ``predictions_dir/<video>.txt`` against every ``split_dir/<video>.txt``.

    Every annotated video needs a prediction file with at least one line per annotation line;
    a missing or short one is an :class:`InputError` naming the video. Extra trailing
    predictions are ignored with a warning.
    """
    predictions_dir = require_dir(predictions_dir, "a folder of predictions")
    all_labels, all_predictions = [], []
    for label_file in list_label_files(split_dir):
        video = label_file.stem
        labels = read_labels(label_file)
        prediction_file = predictions_dir / label_file.name
        if not prediction_file.is_file():
            raise InputError(f"no prediction file for video {video!r}", prediction_file)
        predicted = read_labels(prediction_file, allow_unannotated=False)
        if len(predicted) < len(labels):
            raise InputError(
                f"video {video!r}: {len(predicted)} predictions for {len(labels)} annotated frames",
                prediction_file,
            )
        if len(predicted) > len(labels):
            log.warning(
                "%s: %d predictions for %d frames; extra lines ignored",
                prediction_file,
                len(predicted),
                len(labels),
            )
        all_labels.append(labels)
        all_predictions.append(predicted[: len(labels)])
    scores = expression_scores(np.concatenate(all_labels), np.concatenate(all_predictions))
    scores["videos"] = len(all_labels)
    return scores
