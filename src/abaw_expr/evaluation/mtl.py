"""The multi-task challenge's predictions: its submission file and its score, P_MTL.

The submission is one file, in the test list's order (ABAW4 and ABAW7; the layout the
organisers' instructions and the teams' public code write)::

    image,valence,arousal,expression,aus
    10-60-1280x720/00012.jpg,0.31,-0.12,4,0,1,0,0,0,0,0,0,0,0,1,0

twelve 0/1 AU fields after the expression, although the header names them once. The annotation
files and how their frames are windowed are :mod:`abaw_expr.data.mtl`; ``evaluate`` and
``predict`` on them are :mod:`.evaluate`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import read_utf8
from abaw_expr.data.mtl import image_rows, read_mtl
from abaw_expr.errors import InputError
from abaw_expr.evaluation.metrics import mtl_scores
from abaw_expr.tasks import AU_NAMES, MTL, NUM_CLASSES

log = logging.getLogger(__name__)

SUBMISSION = "mtl.csv"  # the file evaluate and predict write


def is_mtl_predictions(first_line: str) -> bool:
    names = tuple(n.strip() for n in first_line.removeprefix("\ufeff").strip().split(","))
    return names in (MTL.submission_columns, MTL.columns)


def _row(fields: list[str], path, line: int) -> tuple[np.ndarray, int, np.ndarray]:
    try:
        va = np.array([float(fields[1]), float(fields[2])], dtype=np.float64)
    except ValueError:
        raise InputError(f"valence or arousal is not a number: {fields[1:3]}", path, line) from None
    if not (np.abs(va) <= 1).all():  # also NaN
        raise InputError(f"valence or arousal outside [-1, 1]: {fields[1:3]}", path, line)
    if not (fields[3].isdigit() and int(fields[3]) < NUM_CLASSES):
        raise InputError(f"expression is {fields[3]!r}, expected 0..7", path, line)
    bad = next((n for n, f in zip(AU_NAMES, fields[4:], strict=True) if f not in ("0", "1")), None)
    if bad is not None:
        raise InputError(
            f"{bad} is {fields[4 + AU_NAMES.index(bad)]!r}, expected 0 or 1", path, line
        )
    return va, int(fields[3]), np.array([int(f) for f in fields[4:]], dtype=np.int8)


def parse_mtl_predictions(text: str, path="<string>") -> dict[tuple[str, int], tuple]:
    """(video, 0-based frame) -> (valence-arousal, expression, AUs) of an MTL submission."""
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or not is_mtl_predictions(lines[0]):
        raise InputError(f"expected the header {','.join(MTL.submission_columns)!r}", path, 1)
    rows = {image: _row(fields, path, line) for line, fields, image in image_rows(lines, path)}
    if not rows:
        raise InputError("the file has a header but no rows", path, 2)
    return rows


def format_mtl_predictions(rows: list[tuple[str, int, np.ndarray, int, np.ndarray]]) -> str:
    """The submission's text for (video, 0-based frame, valence-arousal, expression, AUs) rows."""
    out = [",".join(MTL.submission_columns)]
    for video, frame, va, expr, au in rows:
        aus = ",".join(str(int(x)) for x in au)
        out.append(f"{video}/{frame + 1:05d}.jpg,{va[0]:.6g},{va[1]:.6g},{int(expr)},{aus}")
    return "\n".join(out) + "\n"


def score_mtl(predictions: Path | str, annotations: Path | str) -> dict:
    """P_MTL of an MTL submission against an MTL annotation file: every annotated row needs a
    prediction row (an InputError names the first missing one); other rows are ignored."""
    truth = read_mtl(annotations)
    predicted = parse_mtl_predictions(read_utf8(predictions, "an MTL prediction file"), predictions)
    columns: dict[str, list] = {"va": [], "expr": [], "au": []}
    guesses: dict[str, list] = {"va": [], "expr": [], "au": []}
    for video, rows in truth.items():
        for frame, va, expr, au in zip(rows.frames, rows.va, rows.expr, rows.au, strict=True):
            if (video, frame) not in predicted:
                raise InputError(f"no row for {video}/{frame + 1:05d}.jpg", predictions)
            p_va, p_expr, p_au = predicted[(video, frame)]
            for key, t, p in (("va", va, p_va), ("expr", expr, p_expr), ("au", au, p_au)):
                columns[key].append(t)
                guesses[key].append(p)
    extra = len(predicted) - len(columns["expr"])
    if extra:
        log.warning("%s: %d rows not in the annotations ignored", predictions, extra)
    scores = mtl_scores(
        {k: np.array(v) for k, v in columns.items()}, {k: np.array(v) for k, v in guesses.items()}
    )
    scores["videos"] = len(truth)
    return scores
