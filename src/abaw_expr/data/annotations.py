"""Read and write one ABAW expression label file.

Format (ABAW EXPR track): a header line naming the 8 classes, then one integer per video
frame: 0..7, or -1 where the frame is not annotated. Line ``i + 1`` of the body is frame
``i + 1`` (1-based, like the image names in ``cropped_aligned``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES, HEADER, NUM_CLASSES, UNANNOTATED
from ..errors import InputError, require_dir
from ..writers import atomic_write_text

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
