"""ABAW's three frame-level tracks and their annotation files, read strictly.

Every track has one ``<video>.txt`` per video under ``<track folder>/<split>/``: a header
naming the track's columns, then line ``i + 1`` of the body for frame ``i + 1``, as for the
expression track (:mod:`.annotations`):

- ``expr`` (``EXPR_Classification_Challenge``): one class index 0..7, ``-1`` not annotated.
- ``va`` (``VA_Estimation_Challenge``): ``valence,arousal``, two numbers in [-1, 1]; ``-5``
  marks a value that is not annotated, and a frame counts as annotated only where neither
  value is ``-5`` (ABAW writes ``-5,-5``; a single ``-5`` leaves the frame out as well).
- ``au`` (``AU_Detection_Challenge``): 12 values 0/1, one per action unit; ``-1`` in every
  column marks a frame that is not annotated (a ``-1`` in only some columns is an error).

Prediction files have the same header and one line per frame, without the unannotated
markers: a class 0..7, two numbers in [-1, 1], or twelve 0/1 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES
from ..errors import InputError
from .annotations import parse_labels, read_utf8

AU_NAMES: tuple[str, ...] = (
    "AU1",
    "AU2",
    "AU4",
    "AU6",
    "AU7",
    "AU10",
    "AU12",
    "AU15",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
)
VA_NAMES: tuple[str, ...] = ("valence", "arousal")
VA_UNANNOTATED = -5.0
AU_UNANNOTATED = -1


@dataclass(frozen=True)
class Track:
    name: str  # "expr", "va" or "au": the CLI's and the JSON's name
    folder: str  # the folder ABAW ships the track's annotations in
    columns: tuple[str, ...]  # the header of its annotation and prediction files
    title: str

    @property
    def header(self) -> str:
        return ",".join(self.columns)


EXPR = Track("expr", "EXPR_Classification_Challenge", CLASS_NAMES, "expression")
VA = Track("va", "VA_Estimation_Challenge", VA_NAMES, "valence-arousal")
AU = Track("au", "AU_Detection_Challenge", AU_NAMES, "action units")
TRACKS: dict[str, Track] = {t.name: t for t in (EXPR, VA, AU)}


def track_of_header(line: str, path: Path | str = "<string>") -> Track:
    """The track whose header ``line`` is (spaces around names tolerated)."""
    names = tuple(name.strip() for name in line.split(","))
    for track in TRACKS.values():
        if names == track.columns:
            return track
    expected = " or ".join(repr(t.header) for t in TRACKS.values())
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


def parse_track_file(
    text: str, path: Path | str = "<string>", prediction: bool = False
) -> tuple[Track, np.ndarray]:
    """The track a label (or prediction) file belongs to, by its header, and its values.

    ``expr``: int8 (frames,); ``va``: float32 (frames, 2); ``au``: int8 (frames, 12). Tolerated:
    a UTF-8 BOM, Windows line endings, trailing blank lines, spaces around values. Anything
    else is an :class:`InputError` naming file and line.
    """
    header, rows = _body_lines(text, path)
    track = track_of_header(header, path)
    if track is EXPR:
        return track, parse_labels(text, path, allow_unannotated=not prediction)
    if track is VA:
        return track, parse_va_rows(rows, path, 2, prediction)
    return track, parse_au_rows(rows, path, 2, prediction)


def read_track_file(path: Path | str, prediction: bool = False) -> tuple[Track, np.ndarray]:
    """Read one ``<video>.txt`` of any track; see :func:`parse_track_file`."""
    return parse_track_file(read_utf8(path), path, prediction)


def annotated(track: Track, values: np.ndarray) -> np.ndarray:
    """Boolean (frames,): which frames of a label array are annotated for ``track``."""
    if track is EXPR:
        return values >= 0
    if track is VA:
        return (values != VA_UNANNOTATED).all(axis=1)
    return values[:, 0] != AU_UNANNOTATED


def format_track_file(track: Track, values: np.ndarray) -> str:
    """The text of a per-video label or prediction file of ``track`` (ABAW3's layout)."""
    values = np.asarray(values)
    if track is VA:
        body = [f"{v:.6g},{a:.6g}" for v, a in values.tolist()]
    elif track is AU:
        body = [",".join(str(int(x)) for x in row) for row in values.tolist()]
    else:
        body = [str(int(x)) for x in values.tolist()]
    return track.header + "\n" + "\n".join(body) + "\n"
