"""Several of ABAW's tracks over the same videos: finding their folders and merging their labels.

``--annotations`` may name one track's folder (holding ``Train_Set``/``Validation_Set``; its
files' header tells the track), the folder that holds the track folders as ABAW ships them
(``EXPR_Classification_Challenge``, or ``EXPR_Recognition_Challenge`` from ABAW5 on,
``VA_Estimation_Challenge``, ``AU_Detection_Challenge``), or the multi-task challenge's files
(:mod:`.mtl`). Any other folder under the root is named in a warning; a root with none of them
is refused, naming what it holds.

The tracks annotate overlapping but different sets of videos, and a video's split can differ
between them. The merged index of a split holds every video that any chosen track has in that
split, with an array per chosen track (all unannotated where a track has no file for it), and
as many frames as its longest annotation. No frame of a video that any chosen track validates
on is trained on: such a video is left out of Train_Set, with a warning naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import SPLITS, list_label_files, read_task_file
from abaw_expr.data.frame_index import FrameIndex, VideoFrames, check_video_name, list_image_frames
from abaw_expr.data.mtl import build_mtl_index, find_mtl
from abaw_expr.errors import InputError, require_dir
from abaw_expr.tasks import AU, EXPR, MTL, TASKS, VA, VA_UNANNOTATED

log = logging.getLogger(__name__)


# ABAW 2020 and 2021 shipped their tasks in these folders, with Training_Set/: their expressions
# have 7 classes (no Other) and their AUs are another 8, so their files are not ABAW3's tasks.
FIRST_EDITIONS = {
    "EXPR_Set": "ABAW 2020-2021's 7 expression classes, not ABAW3's 8",
    "AU_Set": "ABAW 2020-2021's 8 action units, not ABAW3's 12",
    "VA_Set": "ABAW 2020-2021's valence-arousal: to read it, rename it VA_Estimation_Challenge "
    "and its Training_Set Train_Set",
}


def _splits_in(folder: Path) -> dict[str, Path]:
    return {s: folder / s for s in SPLITS if (folder / s).is_dir()}


def _task_folders(root: Path) -> dict[str, dict[str, Path]]:
    """The task folders under ``root``, by any edition's name; a warning names every other
    folder there, so that nothing is dropped in silence."""
    known = {name: task for task in TASKS.values() for name in task.folders}
    found: dict[str, dict[str, Path]] = {}
    where: dict[str, str] = {}
    for entry in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        task = known.get(entry.name)
        if task is None:
            what = "not an ABAW task folder"
            if entry.name in FIRST_EDITIONS:
                what = FIRST_EDITIONS[entry.name]
            elif find_mtl(entry):
                what = "the multi-task challenge's files: pass that folder alone"
            log.warning("%s: ignored (%s; task folders are %s)", entry, what, ", ".join(known))
            continue
        if task.name in where:
            raise InputError(f"two {task.title} folders, {where[task.name]} and {entry.name}", root)
        splits = _splits_in(entry)
        if not splits:
            raise InputError(f"holds neither of the split folders {', '.join(SPLITS)}", entry)
        found[task.name], where[task.name] = splits, entry.name
    return {name: found[name] for name in TASKS if name in found}


def find_tasks(annotations_dir: Path | str) -> dict[str, dict[str, Path]]:
    """``{task name: {split: folder}}`` for the tasks under ``annotations_dir``.

    The multi-task challenge's annotations (a file, or a folder of the split files; see
    :mod:`.mtl`) give ``{task: {split: file}}`` for expr, va and au, one file serving all three.
    """
    mtl = find_mtl(annotations_dir)
    if mtl is not None:
        return {task.name: dict(mtl) for task in TASKS.values()}
    root = require_dir(annotations_dir, "a folder of annotations")
    direct = _splits_in(root)
    if direct:
        first = list_label_files(next(iter(direct.values())))[0]
        task, _ = read_task_file(first)
        return {task.name: direct}
    found = _task_folders(root)
    if not found:
        holds = sorted(p.name for p in root.iterdir())
        folders = ", ".join(name for t in TASKS.values() for name in t.folders)
        raise InputError(
            f"holds neither {' nor '.join(SPLITS)}, nor a task folder ({folders}), nor the "
            f"multi-task files ({', '.join(MTL.files.values())}); it holds "
            f"{', '.join(holds[:6]) + (', ...' if len(holds) > 6 else '') if holds else 'nothing'}",
            root,
        )
    return found


def is_mtl(tasks: dict[str, dict[str, Path]]) -> bool:
    """Whether :func:`find_tasks` found the multi-task challenge's files."""
    return any(p.is_file() for splits in tasks.values() for p in splits.values())


def choose_tasks(
    found: dict[str, dict[str, Path]], wanted: Sequence[str] | None, where: Path | str
) -> dict[str, dict[str, Path]]:
    """The tracks asked for (all found if ``wanted`` is None), in ABAW's order."""
    if wanted is None:
        return {t: found[t] for t in TASKS if t in found}
    missing = [t for t in wanted if t not in found]
    unknown = [t for t in wanted if t not in TASKS]
    if unknown:
        raise InputError(f"unknown track {unknown[0]!r}; expected some of {list(TASKS)}")
    if missing:
        task = TASKS[missing[0]]
        raise InputError(
            f"no {task.title} annotations ({' or '.join(task.folders)}) here; "
            f"found {', '.join(found) or 'none'}",
            where,
        )
    return {t: found[t] for t in TASKS if t in wanted}


def _unannotated(task_name: str, length: int) -> np.ndarray:
    if task_name == "expr":
        return np.full(length, -1, dtype=np.int8)
    if task_name == "va":
        return np.full((length, 2), VA_UNANNOTATED, dtype=np.float32)
    return np.full((length, len(AU.columns)), -1, dtype=np.int8)


def _padded(values: np.ndarray, task_name: str, length: int) -> np.ndarray:
    out = _unannotated(task_name, length)
    out[: len(values)] = values
    return out


def build_task_index(
    images_dir: Path | str, tasks: dict[str, dict[str, Path]]
) -> dict[str, FrameIndex]:
    """One merged :class:`FrameIndex` per split over the chosen tracks' label files (or the
    multi-task challenge's files)."""
    if is_mtl(tasks):
        return build_mtl_index(images_dir, next(iter(tasks.values())), list(tasks))
    images_dir = require_dir(images_dir, "the cropped_aligned folder")
    files: dict[str, dict[str, dict[str, Path]]] = {s: {} for s in SPLITS}  # split/video/track
    for task_name, splits in tasks.items():
        for split, folder in splits.items():
            for f in list_label_files(folder):
                files[split].setdefault(check_video_name(f.stem, f), {})[task_name] = f
        both = (
            sorted(
                {f.stem for f in list_label_files(splits["Train_Set"])}
                & {f.stem for f in list_label_files(splits["Validation_Set"])}
            )
            if len(splits) == 2
            else []
        )
        if both:
            raise InputError(
                f"video {both[0]!r} is in both Train_Set and Validation_Set of the "
                f"{TASKS[task_name].title} track ({len(both)} such videos)",
                splits["Validation_Set"],
            )
    validated = set(files["Validation_Set"])
    for name in sorted(validated & set(files["Train_Set"])):
        tasks_there = ", ".join(TASKS[t].title for t in files["Train_Set"][name])
        log.warning(
            "video %s is left out of training: another track validates on it (its %s labels "
            "are in Train_Set)",
            name,
            tasks_there,
        )
        del files["Train_Set"][name]
    indexes = {}
    for split in SPLITS:
        videos = []
        for name in sorted(files[split]):
            by_task = {}
            for task_name, f in files[split][name].items():
                task, values = read_task_file(f)
                if task.name != task_name:
                    raise InputError(
                        f"a {task.title} file in the {TASKS[task_name].title} track's folder",
                        f,
                        1,
                    )
                by_task[task_name] = values
            length = max(len(v) for v in by_task.values())
            arrays = {
                t: _padded(by_task[t], t, length) if t in by_task else _unannotated(t, length)
                for t in tasks
            }
            image_dir = images_dir / name
            frames = list_image_frames(image_dir)
            has_image = np.zeros(length, dtype=bool)
            has_image[frames[frames < length]] = True
            videos.append(
                VideoFrames(
                    name,
                    image_dir,
                    arrays.get("expr", _unannotated("expr", length)),
                    has_image,
                    split,
                    va=arrays.get("va"),
                    au=arrays.get("au"),
                )
            )
        indexes[split] = FrameIndex(videos)
    return indexes


def task_stats(index: FrameIndex, tasks: Sequence[str]) -> dict:
    """Per track: videos with labels, annotated frames, annotated frames with a face, and the
    track's label counts (classes, AU positives, VA means)."""
    out = {}
    for task_name in tasks:
        task = TASKS[task_name]
        videos = annotated_frames = usable = 0
        for v in index:
            mask = v.annotated_for(task_name)
            videos += bool(mask.any())
            annotated_frames += int(mask.sum())
            usable += int((mask & v.has_image).sum())
        entry = {"videos": videos, "annotated": annotated_frames, "usable": usable}
        if task is VA and usable:
            values = np.concatenate([v.va[v.annotated_for("va") & v.has_image] for v in index])
            entry["mean"] = {
                "valence": float(values[:, 0].mean()),
                "arousal": float(values[:, 1].mean()),
            }
        if task is AU:
            rows = [v.au[v.annotated_for("au") & v.has_image] for v in index]
            positives = np.concatenate(rows).sum(0) if rows else np.zeros(len(AU.columns))
            entry["positive"] = {n: int(c) for n, c in zip(AU.columns, positives, strict=True)}
        if task is EXPR:
            entry["per_class"] = index.stats()["per_class"]
        out[task_name] = entry
    return out
