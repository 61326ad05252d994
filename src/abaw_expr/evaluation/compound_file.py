"""The C-EXPR-DB file (ABAW6 and ABAW7's compound-expression challenge) and its score.

One file, a header, then one row per frame image with its compound class 0..6
(:data:`~abaw_expr.inference.compound.COMPOUND_NAMES` gives the order)::

    image_location,Fearfully_Surprised,Happily_Surprised,Sadly_Surprised,Disgustedly_Surprised,Angrily_Surprised,Sadly_Fearful,Sadly_Angry
    video_1/00001.jpg,4

Predictions and labels use the same layout (labels name only the labelled frames). The score
is the macro F1 over the 7 classes on the labelled frames; a class absent from both the labels
and the predictions counts 0, as in scikit-learn's ``f1_score(labels=range(7),
average="macro", zero_division=0)`` and as this package scores the 8 expression classes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import read_utf8
from abaw_expr.errors import InputError
from abaw_expr.evaluation.metrics import f1_from_confusion
from abaw_expr.evaluation.submission import LOCATION, _frame_of
from abaw_expr.inference.compound import COMPOUND_COLUMNS, COMPOUND_NAMES, NUM_COMPOUNDS

log = logging.getLogger(__name__)

COMPOUND_HEADER = ",".join((LOCATION, *COMPOUND_COLUMNS))

# per video, frame (1-based) -> (class, line of the file)
Rows = dict[str, dict[int, tuple[int, int]]]


def is_compound_header(line: str) -> bool:
    names = [n.strip() for n in line.removeprefix("\ufeff").split(",")]
    return names == [LOCATION, *COMPOUND_COLUMNS]


def is_compound_file(path: Path | str) -> bool:
    """Whether ``path`` is a file whose first line is the C-EXPR-DB header."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        return is_compound_header(handle.readline())


def format_compound_file(classes: dict[str, np.ndarray]) -> str:
    """The file for per-video arrays of compound classes (frame ``i + 1`` at index ``i``)."""
    out = [COMPOUND_HEADER]
    for video in sorted(classes):
        out += [f"{video}/{i + 1:05d}.jpg,{int(c)}" for i, c in enumerate(classes[video])]
    return "\n".join(out) + "\n"


def parse_compound_file(text: str, path: Path | str = "<string>") -> Rows:
    """Per video, frame -> (class, line); a bad header, a short row, a class outside 0..6 or
    a second row for a frame is an :class:`InputError` naming the line."""
    lines = text.removeprefix("\ufeff").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not is_compound_header(lines[0]):
        got = lines[0].strip() if lines else ""
        raise InputError(f"expected the header {COMPOUND_HEADER!r}, got {got!r}", path, 1)
    rows: Rows = {}
    for line, raw in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in raw.split(",")]
        if len(fields) != 2 or not fields[1]:
            raise InputError(
                f"expected {LOCATION},<class 0-{NUM_COMPOUNDS - 1}>: {raw.strip()!r}", path, line
            )
        video, frame = _frame_of(fields[0], path, line)
        if not (fields[1].isdigit() and int(fields[1]) < NUM_COMPOUNDS):
            raise InputError(
                f"not a compound class 0..{NUM_COMPOUNDS - 1}: {fields[1]!r}", path, line
            )
        frames = rows.setdefault(video, {})
        if frame in frames:
            raise InputError(
                f"a second row for {video}/{frame:05d}.jpg (the first is line {frames[frame][1]})",
                path,
                line,
            )
        frames[frame] = (int(fields[1]), line)
    if not rows:
        raise InputError("the file has a header but no rows", path, 2)
    return rows


def read_compound_file(path: Path | str) -> Rows:
    return parse_compound_file(read_utf8(path, "a compound-expression file"), path)


def compound_scores_of(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Macro F1 over the 7 classes, per-class F1 by name, frames and the confusion matrix."""
    cm = np.bincount(
        np.asarray(truth, np.int64) * NUM_COMPOUNDS + np.asarray(predicted, np.int64),
        minlength=NUM_COMPOUNDS * NUM_COMPOUNDS,
    ).reshape(NUM_COMPOUNDS, NUM_COMPOUNDS)
    f1 = f1_from_confusion(cm)
    return {
        "track": "compound",
        "task": "compound",
        "score": float(f1.mean()),
        "macro_f1": float(f1.mean()),
        "per_class_f1": {n: float(x) for n, x in zip(COMPOUND_NAMES, f1, strict=True)},
        "frames": int(cm.sum()),
        "confusion_matrix": cm.tolist(),
        "absent_classes": [n for n, row in zip(COMPOUND_NAMES, cm, strict=True) if row.sum() == 0],
    }


def score_compound(predictions: Path | str, labels: Path | str) -> dict:
    """The compound score of a predictions file against a labels file, both in the C-EXPR-DB
    layout. Every labelled frame needs a row; a missing one is an :class:`InputError` naming
    the frame and the labels' line. Predicted frames without a label are ignored."""
    if Path(predictions).is_dir():
        raise InputError(
            "compound labels need one predictions file in the same layout", predictions
        )
    truth_rows = read_compound_file(labels)
    predicted_rows = read_compound_file(predictions)
    truth, predicted = [], []
    for video in sorted(truth_rows):
        have = predicted_rows.get(video, {})
        missing = [(f, line) for f, (_, line) in sorted(truth_rows[video].items()) if f not in have]
        if missing:
            frame, line = missing[0]
            raise InputError(
                f"no row for {video}/{frame:05d}.jpg, labelled at {labels} line {line} "
                f"({len(missing)} labelled frames of video {video!r} have none)",
                predictions,
            )
        for frame, (label, _) in sorted(truth_rows[video].items()):
            truth.append(label)
            predicted.append(have[frame][0])
    unknown = sorted(set(predicted_rows) - set(truth_rows))
    if unknown:
        log.warning("%s: %d videos without labels ignored", predictions, len(unknown))
    scores = compound_scores_of(np.array(truth), np.array(predicted))
    scores["videos"] = len(truth_rows)
    return scores
