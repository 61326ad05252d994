"""The one-file submission layout of later ABAW editions, beside ABAW3's file per video.

Header ``image_location,<the track's columns>``, then one row per frame image::

    image_location,valence,arousal
    2-30-640x360/00001.jpg,0.5,-0.5

The image path names the video (its folder) and the 1-based frame (its file name); rows may
come in any order. The values follow the per-video files' rules (:mod:`abaw_expr.data.annotations`).
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from abaw_expr.data.annotations import parse_au_rows, parse_va_rows, task_of_header
from abaw_expr.errors import InputError
from abaw_expr.tasks import AU, EXPR, VA, Task

LOCATION = "image_location"


def is_submission_header(line: str) -> bool:
    return line.removeprefix("\ufeff").split(",")[0].strip() == LOCATION


def _frame_of(location: str, path, line: int) -> tuple[str, int]:
    parts = PurePosixPath(location.replace("\\", "/"))
    video, stem = parts.parent.name, parts.stem
    if not video or not stem.isdigit() or int(stem) < 1:
        raise InputError(
            f"image_location {location!r} is not <video>/<frame number>.jpg", path, line
        )
    return video, int(stem)


def parse_submission(text: str, path="<string>") -> tuple[Task, dict[str, dict[int, np.ndarray]]]:
    """The track (by the header after ``image_location``) and, per video, frame -> values."""
    lines = text.removeprefix("\ufeff").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not is_submission_header(lines[0]):
        raise InputError(f"expected a header starting with {LOCATION!r}", path, 1)
    first, _, rest = lines[0].partition(",")
    task = task_of_header(rest, path)
    by_video: dict[str, dict[int, np.ndarray]] = {}
    for i, raw in enumerate(lines[1:]):
        line = i + 2
        location, sep, values = raw.partition(",")
        if not sep:
            raise InputError(f"expected {LOCATION},{task.header}: {raw.strip()!r}", path, line)
        video, frame = _frame_of(location.strip(), path, line)
        if task is VA:
            row = parse_va_rows([values], path, line, prediction=True)[0]
        elif task is AU:
            row = parse_au_rows([values], path, line, prediction=True)[0]
        else:
            value = values.strip()
            if not (value.isdigit() and int(value) < len(EXPR.columns)):
                raise InputError(f"not a class 0..7: {value!r}", path, line)
            row = np.int8(int(value))
        frames = by_video.setdefault(video, {})
        if frame in frames:
            raise InputError(f"a second row for {video}/{frame:05d}.jpg", path, line)
        frames[frame] = row
    if not by_video:
        raise InputError("the file has a header but no rows", path, 2)
    return task, by_video


def format_submission(task: Task, predictions: dict[str, np.ndarray]) -> str:
    """The one-file layout for per-video prediction arrays (frame ``i + 1`` at index ``i``)."""
    out = [f"{LOCATION},{task.header}"]
    for video in sorted(predictions):
        for i, value in enumerate(np.asarray(predictions[video]).tolist()):
            if task is VA:
                text = f"{value[0]:.6g},{value[1]:.6g}"
            elif task is AU:
                text = ",".join(str(int(x)) for x in value)
            else:
                text = str(int(value))
            out.append(f"{video}/{i + 1:05d}.jpg,{text}")
    return "\n".join(out) + "\n"
