"""Read and write ABAW's per-video annotation files, of every task, strictly.

Every task has one ``<video>.txt`` per video under ``<task folder>/<split>/``: a header naming
the task's columns, then line ``i + 1`` of the body for frame ``i + 1`` (1-based, like the
image names in ``cropped_aligned``):

- ``expr`` (``EXPR_Classification_Challenge``): one class index 0..7, ``-1`` not annotated.
- ``va`` (``VA_Estimation_Challenge``): ``valence,arousal``, two numbers in [-1, 1]; ``-5``
  marks a value that is not annotated, and a frame counts as annotated only where neither
  value is ``-5`` (ABAW writes ``-5,-5``; a single ``-5`` leaves the frame out as well).
- ``au`` (``AU_Detection_Challenge``): 12 values 0/1, one per action unit; ``-1`` in every
  column marks a frame that is not annotated (a ``-1`` in only some columns is an error).

Prediction files have the same header and one line per frame, without the unannotated
markers: a class 0..7, two numbers in [-1, 1], or twelve 0/1 values. What each task is (its
columns, markers and metric keys) is :mod:`abaw_expr.tasks`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from abaw_expr.errors import InputError, require_dir
from abaw_expr.tasks import (
    AU,
    AU_NAMES,
    AU_UNANNOTATED,
    CLASS_NAMES,
    EXPR,
    HEADER,
    NUM_CLASSES,
    TASKS,
    UNANNOTATED,
    VA,
    VA_NAMES,
    VA_UNANNOTATED,
    Task,
)
from abaw_expr.writers import atomic_write_text

log = logging.getLogger(__name__)

SPLITS = ("Train_Set", "Validation_Set")


def parse_labels(
    text: str, path: Path | str = "<string>", allow_unannotated: bool = True
) -> np.ndarray:
    """Parse the text of a label file into an int8 array (one entry per frame).

    Tolerated: a UTF-8 BOM, Windows line endings, trailing blank lines, spaces around
    values and header names. Anything else is an :class:`InputError` naming file and line.
    """
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError("empty label file: expected the header line " + repr(HEADER), path, 1)
    header = [name.strip() for name in lines[0].split(",")]
    if tuple(header) != CLASS_NAMES:
        raise InputError(f"bad header {lines[0].strip()!r}: expected {HEADER!r}", path, 1)
    if len(lines) == 1:
        raise InputError("label file has a header but no frames", path, 2)
    body = lines[1:]
    labels = np.empty(len(body), dtype=np.int8)
    low = UNANNOTATED if allow_unannotated else 0
    for i, raw in enumerate(body):
        value = raw.strip()
        try:
            label = int(value)
        except ValueError:
            raise InputError(
                f"not a label: {value!r} (expected an integer {low}..{NUM_CLASSES - 1})",
                path,
                i + 2,
            ) from None
        if not low <= label < NUM_CLASSES:
            raise InputError(f"label {label} out of range {low}..{NUM_CLASSES - 1}", path, i + 2)
        labels[i] = label
    return labels


def read_utf8(path: Path | str, expected: str = "a label file") -> str:
    """The text of a UTF-8 file; a folder, a missing file or other bytes is an InputError."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"is a folder, expected {expected}", path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror or err})", path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None


def read_labels(path: Path | str, allow_unannotated: bool = True) -> np.ndarray:
    """Read one ``<video>.txt``; see :func:`parse_labels`."""
    return parse_labels(read_utf8(path), path, allow_unannotated)


def format_labels(labels: np.ndarray | list[int]) -> str:
    """The text of a label file (also the ABAW submission format) for these labels."""
    body = "\n".join(str(int(x)) for x in labels)
    return HEADER + "\n" + body + "\n"


def write_labels(path: Path | str, labels: np.ndarray | list[int]) -> None:
    """Write a label / prediction file atomically."""
    atomic_write_text(Path(path), format_labels(labels))


def list_label_files(split_dir: Path | str) -> list[Path]:
    """The ``<video>.txt`` files of one split folder, sorted by video name."""
    split_dir = require_dir(split_dir, "a folder of <video>.txt label files")
    files = sorted(p for p in split_dir.iterdir() if p.suffix == ".txt" and p.is_file())
    if not files:
        raise InputError("no <video>.txt label files in this folder", split_dir)
    return files


def find_splits(annotations_dir: Path | str) -> dict[str, Path]:
    """Map split name -> folder, for the ABAW split folders present under ``annotations_dir``."""
    root = require_dir(annotations_dir, "a folder")
    found = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if not found:
        raise InputError(f"holds neither of the split folders {', '.join(SPLITS)}", root)
    return found


# The files of every task (ABAW3's layout).


def task_of_header(line: str, path: Path | str = "<string>") -> Task:
    """The task whose header ``line`` is (spaces around names tolerated)."""
    names = tuple(name.strip() for name in line.split(","))
    for task in TASKS.values():
        if names == task.columns:
            return task
    expected = " or ".join(repr(t.header) for t in TASKS.values())
    raise InputError(f"unknown header {line.strip()!r}: expected {expected}", path, 1)


def _body_lines(text: str, path: Path | str) -> tuple[str, list[str]]:
    lines = text.removeprefix("\ufeff").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError("empty file: expected a header line", path, 1)
    if len(lines) == 1:
        raise InputError("the file has a header but no frames", path, 2)
    return lines[0], lines[1:]


def _fields(raw: str, count: int, path: Path | str, line: int) -> list[str]:
    fields = [f.strip() for f in raw.split(",")]
    if len(fields) != count:
        raise InputError(f"{len(fields)} values, expected {count}: {raw.strip()!r}", path, line)
    return fields


def parse_va_rows(
    rows: list[str], path: Path | str, first_line: int, prediction: bool
) -> np.ndarray:
    """(frames, 2) float32 of ``valence,arousal`` rows; ``-5`` kept where not annotated."""
    values = np.empty((len(rows), 2), dtype=np.float32)
    for i, raw in enumerate(rows):
        line = first_line + i
        for j, field in enumerate(_fields(raw, 2, path, line)):
            try:
                value = float(field)
            except ValueError:
                raise InputError(f"not a number: {field!r}", path, line) from None
            allowed = -1.0 <= value <= 1.0 or (not prediction and value == VA_UNANNOTATED)
            if not allowed:  # also NaN
                marker = "" if prediction else " (or -5 where not annotated)"
                raise InputError(f"{VA_NAMES[j]} {field} outside [-1, 1]{marker}", path, line)
            values[i, j] = value
    return values


def parse_au_rows(
    rows: list[str], path: Path | str, first_line: int, prediction: bool
) -> np.ndarray:
    """(frames, 12) int8 of 0/1 rows; a whole row of ``-1`` where not annotated."""
    values = np.empty((len(rows), len(AU_NAMES)), dtype=np.int8)
    for i, raw in enumerate(rows):
        line = first_line + i
        fields = _fields(raw, len(AU_NAMES), path, line)
        try:
            row = [int(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not f.lstrip("-").isdigit())
            raise InputError(f"not an integer: {bad!r}", path, line) from None
        whole_row_unannotated = not prediction and all(v == AU_UNANNOTATED for v in row)
        if not whole_row_unannotated:
            for name, v in zip(AU_NAMES, row, strict=True):
                if v not in (0, 1):
                    marker = "" if prediction else " (or -1 in every column where not annotated)"
                    raise InputError(f"{name} is {v}, expected 0 or 1{marker}", path, line)
        values[i] = row
    return values


def parse_task_file(
    text: str, path: Path | str = "<string>", prediction: bool = False
) -> tuple[Task, np.ndarray]:
    """The task a label (or prediction) file belongs to, by its header, and its values.

    ``expr``: int8 (frames,); ``va``: float32 (frames, 2); ``au``: int8 (frames, 12). Tolerated:
    a UTF-8 BOM, Windows line endings, trailing blank lines, spaces around values. Anything
    else is an :class:`InputError` naming file and line.
    """
    header, rows = _body_lines(text, path)
    task = task_of_header(header, path)
    if task is EXPR:
        return task, parse_labels(text, path, allow_unannotated=not prediction)
    if task is VA:
        return task, parse_va_rows(rows, path, 2, prediction)
    return task, parse_au_rows(rows, path, 2, prediction)


def read_task_file(path: Path | str, prediction: bool = False) -> tuple[Task, np.ndarray]:
    """Read one ``<video>.txt`` of any task; see :func:`parse_task_file`."""
    return parse_task_file(read_utf8(path), path, prediction)


def format_task_file(task: Task, values: np.ndarray) -> str:
    """The text of a per-video label or prediction file of ``task`` (ABAW3's layout)."""
    values = np.asarray(values)
    if task is VA:
        body = [f"{v:.6g},{a:.6g}" for v, a in values.tolist()]
    elif task is AU:
        body = [",".join(str(int(x)) for x in row) for row in values.tolist()]
    else:
        body = [str(int(x)) for x in values.tolist()]
    return task.header + "\n" + "\n".join(body) + "\n"


def absent_classes(labels: np.ndarray) -> list[str]:
    """Names of the classes that no annotated frame of ``labels`` has."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=NUM_CLASSES)
    return [name for name, count in zip(CLASS_NAMES, counts, strict=True) if count == 0]


def warn_absent_classes(labels: np.ndarray, where: str) -> list[str]:
    """Warn (once per call) about classes absent from ``labels``; returns their names."""
    absent = absent_classes(labels)
    if absent:
        log.warning(
            "%s: no annotated frame of %s; as in ABAW's scoring its F1 is 0 "
            "(zero_division=0), so macro F1 cannot exceed %d/8",
            where,
            ", ".join(absent),
            NUM_CLASSES - len(absent),
        )
    return absent
