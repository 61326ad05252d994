"""The multi-task challenge's files (ABAW4 and ABAW7 on s-Aff-Wild2): one annotation file per split.

``training_set_annotations.txt`` and ``validation_set_annotations.txt`` (in ``MTL_Challenge/``
as the organisers ship them) hold one row per *selected* frame, not per frame::

    image,valence,arousal,expression,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26
    10-60-1280x720/00012.jpg,0.31,-0.12,4,0,1,0,0,0,0,0,0,0,0,1,0

``-5`` marks valence or arousal as not annotated (a frame counts for VA only where neither
is ``-5``, as in the VA files), ``-1`` the expression; AUs are annotated where no column is
``-1``. A row with ``-1`` in only some AU columns is read as not annotated for AUs, with one
warning per file (the teams' public loaders treat any ``-1`` so; the per-video AU files refuse
it). Rows may come in any order; a frame listed twice is an error.

Each video becomes a :class:`~.frame_index.VideoFrames` as long as its last listed frame, with
the labels on the listed frames and *only the listed frames counted as having an image*: the
64-frame windows run over the listed frames in order. s-Aff-Wild2's own image folders hold
just those frames, so this is the same on them; pointed at the full Aff-Wild2
``cropped_aligned``, the unlisted images are left out, so that training, validation and test
windows all span the same stretch of time (docs/data.md).

The test list (``MTL_Challenge_test_set_release.txt``) is a header ``image`` and one image per
line, in the order the submission must follow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from abaw_expr.data.annotations import SPLITS, read_utf8
from abaw_expr.data.frame_index import FrameIndex, VideoFrames, check_video_name
from abaw_expr.errors import InputError, require_dir
from abaw_expr.tasks import (
    AU,
    AU_UNANNOTATED,
    MTL,
    NUM_CLASSES,
    UNANNOTATED,
    VA_UNANNOTATED,
)

log = logging.getLogger(__name__)

_FIELDS = len(MTL.columns)


@dataclass
class MtlRows:
    """One video's rows of an MTL file, in file order."""

    lines: list[int]  # 1-based line numbers in the file
    frames: list[int]  # 0-based frame numbers
    va: list[tuple[float, float]]
    expr: list[int]
    au: list[list[int]]


def split_of_file(path: Path) -> str:
    """The split an MTL annotation file holds, by its name (a validation file otherwise)."""
    return SPLITS[0] if path.name.lower().startswith("train") else SPLITS[1]


def is_mtl_file(path: Path | str) -> bool:
    """Whether annotations given as ``path`` are the MTL challenge's: every other task's are
    folders, so any file is taken for one (and its header checked when it is read)."""
    return Path(path).is_file()


def find_mtl(path: Path | str) -> dict[str, Path] | None:
    """``{split: file}`` when ``path`` is an MTL annotation file, or a folder holding the
    split files (directly or in ``MTL_Challenge/``); else None."""
    path = Path(path)
    if is_mtl_file(path):
        return {split_of_file(path): path}
    for folder in (path, path / MTL.folder):
        files = {}
        for split, name in MTL.files.items():
            found = _split_file(folder, name)
            if found is not None:
                files[split] = found
        if files:
            return files
    return None


def _split_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, or the one file named like it with a suffix (teams' copies of ABAW4's
    files are seen as ``training_set_annotations_22.txt``); several is an error naming them."""
    if (folder / name).is_file():
        return folder / name
    if not folder.is_dir():
        return None
    stem = name.removesuffix(".txt")
    like = sorted(p for p in folder.glob(f"{stem}*.txt") if p.is_file())
    if len(like) > 1:
        raise InputError(
            f"{len(like)} files could be {name}: {', '.join(p.name for p in like)}", folder
        )
    return like[0] if like else None


def _names(line: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in line.removeprefix("\ufeff").strip().split(","))


def image_of(location: str, path: Path | str, line: int) -> tuple[str, int]:
    """(video, 0-based frame) of ``video/00012.jpg``."""
    parts = PurePosixPath(location.strip().replace("\\", "/"))
    video, stem = parts.parent.name, parts.stem
    if not video or not stem.isdigit() or int(stem) < 1 or parts.suffix.lower() != ".jpg":
        raise InputError(
            f"image {location.strip()!r} is not <video>/<frame number>.jpg", path, line
        )
    try:
        check_video_name(video, path)
    except InputError:
        raise InputError(f"unsafe video name {video!r}", path, line) from None
    return video, int(stem) - 1


def _number(field: str, name: str, path, line: int) -> float:
    try:
        value = float(field)
    except ValueError:
        raise InputError(f"{name} is not a number: {field!r}", path, line) from None
    if not (-1.0 <= value <= 1.0 or value == VA_UNANNOTATED):  # also NaN
        raise InputError(f"{name} {field} outside [-1, 1] (or -5 where not annotated)", path, line)
    return value


def _integer(field: str, name: str, allowed: range, path, line: int) -> int:
    if not field.lstrip("-").isdigit() or int(field) not in allowed:
        low, high = allowed[0], allowed[-1]
        raise InputError(f"{name} is {field!r}, expected {low}..{high}", path, line)
    return int(field)


def _parse_row(fields: list[str], rows: MtlRows, path, line: int) -> bool:
    """Append one row's values; True when its AUs are partly ``-1`` (read as unannotated)."""
    rows.va.append(
        (_number(fields[1], "valence", path, line), _number(fields[2], "arousal", path, line))
    )
    rows.expr.append(_integer(fields[3], "expression", range(UNANNOTATED, NUM_CLASSES), path, line))
    au = [
        _integer(f, name, range(AU_UNANNOTATED, 2), path, line)
        for f, name in zip(fields[4:], AU.columns, strict=True)
    ]
    partial = AU_UNANNOTATED in au and any(v != AU_UNANNOTATED for v in au)
    rows.au.append([AU_UNANNOTATED] * len(au) if partial else au)
    return partial


def image_rows(
    lines: list[str], path: Path | str
) -> Iterator[tuple[int, list[str], tuple[str, int]]]:
    """(line number, fields, (video, 0-based frame)) of each row after the header of a file in
    the MTL layout (annotations or predictions): blank lines skipped; a row of another width,
    a bad image name or an image given twice is an :class:`InputError` naming the line."""
    seen: set[tuple[str, int]] = set()
    for i, raw in enumerate(lines[1:]):
        line = i + 2
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.split(",")]
        if len(fields) != _FIELDS:
            raise InputError(
                f"{len(fields)} values, expected {_FIELDS}: {raw.strip()!r}", path, line
            )
        video, frame = image_of(fields[0], path, line)
        if (video, frame) in seen:
            raise InputError(f"a second row for {video}/{frame + 1:05d}.jpg", path, line)
        seen.add((video, frame))
        yield line, fields, (video, frame)


def parse_mtl(text: str, path: Path | str = "<string>") -> dict[str, MtlRows]:
    """Per video (in the order first seen), its rows of an MTL annotation file.

    Tolerated: a UTF-8 BOM, Windows line endings, blank lines, spaces around values. Anything
    else (a wrong header, a short row, an expression of 9, an AU of 2, a frame listed twice)
    is an :class:`InputError` naming the file and line.
    """
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or _names(lines[0]) != MTL.columns:
        got = lines[0].strip() if lines else ""
        raise InputError(f"bad header {got!r}: expected {','.join(MTL.columns)!r}", path, 1)
    videos: dict[str, MtlRows] = {}
    partial = 0
    for line, fields, (video, frame) in image_rows(lines, path):
        rows = videos.setdefault(video, MtlRows([], [], [], [], []))
        rows.lines.append(line)
        rows.frames.append(frame)
        partial += _parse_row(fields, rows, path, line)
    if not videos:
        raise InputError("the file has a header but no rows", path, 2)
    if partial:
        log.warning(
            "%s: %d rows have -1 in only some AU columns; their AUs count as not annotated",
            path,
            partial,
        )
    return videos


def read_mtl(path: Path | str) -> dict[str, MtlRows]:
    return parse_mtl(read_utf8(path, "an MTL annotation file"), path)


def video_of_rows(
    name: str, rows: MtlRows, images_dir: Path, split: str, tasks, source: Path
) -> VideoFrames:
    """One video of an MTL split: labels on the listed frames, images only there. A listed
    frame without its image is an InputError naming the row."""
    length = max(rows.frames) + 1
    frames = np.array(rows.frames, dtype=np.int64)
    image_dir = images_dir / name
    present = {p.name for p in image_dir.iterdir()} if image_dir.is_dir() else set()
    for frame, line in zip(rows.frames, rows.lines, strict=True):
        if f"{frame + 1:05d}.jpg" not in present:
            raise InputError(f"no image {image_dir / f'{frame + 1:05d}.jpg'}", source, line)
    has_image = np.zeros(length, dtype=bool)
    has_image[frames] = True
    expr = np.full(length, UNANNOTATED, dtype=np.int8)
    va = np.full((length, 2), VA_UNANNOTATED, dtype=np.float32)
    au = np.full((length, len(AU.columns)), AU_UNANNOTATED, dtype=np.int8)
    if "expr" in tasks:
        expr[frames] = rows.expr
    if "va" in tasks:
        va[frames] = rows.va
    if "au" in tasks:
        au[frames] = rows.au
    return VideoFrames(
        name,
        image_dir,
        expr,
        has_image,
        split,
        va=va if "va" in tasks else None,
        au=au if "au" in tasks else None,
    )


def build_mtl_index(images_dir: Path | str, files: dict[str, Path], tasks) -> dict[str, FrameIndex]:
    """One :class:`FrameIndex` per split file, with the labels of ``tasks`` (any of expr, va,
    au); a video in both splits is an InputError."""
    images_dir = require_dir(images_dir, "the cropped_aligned folder")
    indexes, owner = {}, {}
    for split, path in files.items():
        videos = []
        for name, rows in read_mtl(path).items():
            if name in owner:
                raise InputError(
                    f"video {name!r} is in both {owner[name]} and {path.name}", path, rows.lines[0]
                )
            owner[name] = path.name
            videos.append(video_of_rows(name, rows, images_dir, split, tasks, path))
        indexes[split] = FrameIndex(sorted(videos, key=lambda v: v.name))
    return indexes


def read_mtl_test_list(path: Path | str) -> list[tuple[str, int, int]]:
    """(video, 0-based frame, line) of each image of an MTL test list, in its order: a header
    ``image`` (optional), then ``video/00012.jpg`` per line."""
    lines = read_utf8(path, "an MTL test list").removeprefix("\ufeff").splitlines()
    images: list[tuple[str, int, int]] = []
    seen: set[tuple[str, int]] = set()
    for i, raw in enumerate(lines):
        location = raw.split(",")[0].strip()
        if not location or (i == 0 and location.lower() == "image"):
            continue
        image = image_of(location, path, i + 1)
        if image in seen:
            raise InputError(f"{location} listed twice", path, i + 1)
        seen.add(image)
        images.append((*image, i + 1))
    if not images:
        raise InputError("lists no images", path)
    return images


def is_mtl_test_list(path: Path | str) -> bool:
    """Whether a test list names images (``video/00012.jpg``) rather than videos."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            first = raw.removeprefix("\ufeff").split(",")[0].strip()
            if first and first.lower() != "image" and not first.startswith("#"):
                return first.lower().endswith(".jpg")
            if first.lower() == "image":
                return True
    return False


def build_mtl_test_index(images_dir: Path | str, list_file: Path | str) -> FrameIndex:
    """The videos of an MTL test list, each with images at its listed frames only."""
    images_dir = require_dir(images_dir, "the folder of the test images")
    by_video: dict[str, MtlRows] = {}
    for video, frame, line in read_mtl_test_list(list_file):
        rows = by_video.setdefault(video, MtlRows([], [], [], [], []))
        rows.lines.append(line)
        rows.frames.append(frame)
    videos = [
        video_of_rows(name, rows, images_dir, "Test_Set", (), Path(list_file))
        for name, rows in sorted(by_video.items())
    ]
    return FrameIndex(videos)
