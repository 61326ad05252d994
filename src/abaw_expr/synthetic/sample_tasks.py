"""The sample's three tracks in ABAW's layout, with VA and AU labels read off the drawn faces.

:func:`write_tasks` writes ``tracks/<folder>/<split>/<video>.txt`` for the expression,
valence-arousal and action-unit tracks (:mod:`abaw_expr.tasks`). The expression files are byte-identical
copies of ``annotations/``. Valence, arousal and action units are functions of the per-frame
:class:`~.sample_face.FaceParams` rows that the images are drawn from, so they are what the face
shows: through onsets and offsets, lapses to the rest face inside an expression segment,
talking in Neutral stretches, blinks and each person's intensity. They are no function of the
expression class. Nothing here draws from the generators of the images or the expression
labels, so those files stay as they were; the tracks' own draws (unannotated stretches) come
from ``default_rng([seed, split_id, 4, k])`` for video ``k`` of a split.

Action units, from the parameters as :func:`~.sample_face._draw_expression` draws them (negative
``mouth_open``, ``lip_press`` and ``lip_raise`` drawn as 0, ``eye_open`` clipped to
[0.05, 2]); pixels are face-crop pixels (112 x 112), heights upwards:

====  ====================  ==========================================================
AU    name                  positive where (drawn parameters)
====  ====================  ==========================================================
AU1   inner brow raiser     an inner brow end is raised > 3 px:
                            8 brow_raise + 6 brow_tilt + 6 abs(brow_skew) > 3
AU2   outer brow raiser     an outer brow end is raised > 3 px:
                            8 brow_raise - 2 brow_tilt + 6 abs(brow_skew) > 3
AU4   brow lowerer          the inner brow ends are lowered > 3 px (mean of both sides):
                            -(8 brow_raise + 6 brow_tilt) > 3
AU6   cheek raiser          a broad smile that narrows the eyes:
                            smile > 0.5 and eye_open < 0.9
AU7   lid tightener         narrowed, not closed, eyes: 0.25 < eye_open < 0.8
                            (a blink, eye_open < 0.25, is no AU of the twelve)
AU10  upper lip raiser      the upper lip is raised > 2 px: 5 lip_raise > 2
AU12  lip corner puller     a mouth corner is raised > 3 px:
                            10 smile + 10 max(mouth_skew, 0) > 3 (a smirk counts)
AU15  lip corner depressor  a mouth corner is lowered > 3 px:
                            -(10 smile + 10 min(mouth_skew, 0)) > 3
AU23  lip tightener         thinned lips: lip_press > 0.25
AU24  lip pressor           lips pressed thin: lip_press > 0.6
AU25  lips part             the lips are > 1.5 px apart:
                            15 mouth_open + 5 lip_raise > 1.5 (talking opens them too)
AU26  jaw drop              the lower lip drops > 2.7 px: 9 mouth_open > 2.7
====  ====================  ==========================================================

Valence and arousal are linear in the same drawn parameters (:func:`va_labels`), smoothed
over 5 frames (a Hann window), clipped to [-1, 1] and rounded to 3 decimals: valence rises
with the smile and a smirk and falls with frowning or worried brows, a wrinkled nose and
pressed lips; arousal rises with an open mouth, raised brows, widened eyes, a frown, pressed
lips, a wrinkled nose and a smile, and falls with a drooping sad face.

Quirks of the real data, beside those of the expression files: each of VA and AU has its own
unannotated stretches (``-5,-5`` rows; whole rows of ``-1``), besides the frames whose face
and expression label are gone; one training video is in the AU track only (its images are
there, its expression file stays under ``annotations/``, but no track folder holds an EXPR or
VA file for it); and one video is in another split in the VA track than in the other two.
"""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import SPLITS, format_task_file
from abaw_expr.synthetic.sample_face import FaceParams
from abaw_expr.synthetic.sample_plan import VideoPlan
from abaw_expr.tasks import (
    AU,
    AU_NAMES,
    EXPR,
    MTL,
    UNANNOTATED,
    VA,
    VA_UNANNOTATED,
    Task,
    annotated,
)
from abaw_expr.writers import atomic_write_text

_COLUMN = {f.name: i for i, f in enumerate(fields(FaceParams))}
_UNANNOTATED_RUNS = (10, 61)  # lengths of a track's own unannotated stretches: 10..60 frames


def drawn(params: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of ``params`` (frames, len(FaceParams)) by name, clipped as they are drawn."""
    p = {name: np.asarray(params[:, i], np.float64) for name, i in _COLUMN.items()}
    for name in ("mouth_open", "lip_press", "lip_raise", "teeth", "nose_wrinkle"):
        p[name] = np.maximum(p[name], 0.0)
    p["eye_open"] = np.clip(p["eye_open"], 0.05, 2.0)
    return p


def au_labels(params: np.ndarray) -> np.ndarray:
    """(frames, 12) int8 0/1, in :data:`~abaw_expr.tasks.AU_NAMES` order; see the module's table."""
    p = drawn(params)
    braise, tilt, skew = p["brow_raise"], p["brow_tilt"], np.abs(p["brow_skew"])
    smile, mskew, eye = p["smile"], p["mouth_skew"], p["eye_open"]
    press, mopen, lraise = p["lip_press"], p["mouth_open"], p["lip_raise"]
    active = {
        "AU1": 8 * braise + 6 * tilt + 6 * skew > 3,
        "AU2": 8 * braise - 2 * tilt + 6 * skew > 3,
        "AU4": -(8 * braise + 6 * tilt) > 3,
        "AU6": (smile > 0.5) & (eye < 0.9),
        "AU7": (eye > 0.25) & (eye < 0.8),
        "AU10": 5 * lraise > 2,
        "AU12": 10 * smile + 10 * np.maximum(mskew, 0) > 3,
        "AU15": -(10 * smile + 10 * np.minimum(mskew, 0)) > 3,
        "AU23": press > 0.25,
        "AU24": press > 0.6,
        "AU25": 15 * mopen + 5 * lraise > 1.5,
        "AU26": 9 * mopen > 2.7,
    }
    return np.stack([active[name] for name in AU_NAMES], axis=1).astype(np.int8)


def _smooth5(x: np.ndarray) -> np.ndarray:
    window = np.hanning(7)[1:-1]
    return np.convolve(np.pad(x, 2, mode="edge"), window / window.sum(), mode="valid")


def va_labels(params: np.ndarray) -> np.ndarray:
    """(frames, 2) float64 valence and arousal in [-1, 1], rounded to 3 decimals."""
    p = drawn(params)
    smile, tilt = p["smile"], p["brow_tilt"]
    frown, worry = np.maximum(-tilt, 0), np.maximum(tilt, 0)
    valence = (
        0.6 * smile
        + 0.15 * np.abs(p["mouth_skew"])
        - 0.25 * frown
        - 0.15 * worry
        - 0.3 * p["nose_wrinkle"]
        - 0.15 * p["lip_press"]
    )
    arousal = (
        -0.1
        + 0.35 * p["mouth_open"]
        + 0.2 * np.maximum(p["brow_raise"], 0)
        + 0.5 * np.maximum(p["eye_open"] - 1, 0)
        + 0.25 * frown
        + 0.2 * p["lip_press"]
        + 0.15 * p["nose_wrinkle"]
        + 0.15 * np.maximum(smile, 0)
        - 0.35 * np.maximum(-smile, 0) * worry
    )
    va = np.stack([_smooth5(valence), _smooth5(arousal)], axis=1)
    return np.round(np.clip(va, -1, 1), 3) + 0.0  # + 0.0: no "-0" in the files


def _unannotated_runs(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for _ in range(count):
        length = int(rng.integers(*_UNANNOTATED_RUNS))
        start = int(rng.integers(0, max(n - length, 1)))
        mask[start : start + length] = True
    return mask


def task_labels(plan: VideoPlan) -> tuple[np.ndarray, np.ndarray]:
    """The VA (frames, 2) and AU (frames, 12) label arrays of one video, with their markers.

    A frame whose face and expression label are both gone is unannotated in every track; each
    track also has its own stretches of 10..60 frames, one in the first video of a split and
    another in 40 % of the videos, drawn from ``plan.track_seed``.
    """
    frames = len(plan.labels)
    rng = np.random.default_rng(plan.task_seed)
    gone = ~plan.has_image[:frames] & (plan.labels == UNANNOTATED)
    first = plan.task_seed[-1] == 0
    va, au = va_labels(plan.params[:frames]), au_labels(plan.params[:frames])
    va[gone | _unannotated_runs(rng, frames, int(rng.random() < 0.4) + first)] = VA_UNANNOTATED
    au[gone | _unannotated_runs(rng, frames, int(rng.random() < 0.4) + first)] = -1
    return va, au


def _pick(names: list[str], taken: set[str]) -> str:
    """The first of ``names`` that no other quirk uses, else the last."""
    return next((n for n in names if n not in taken), names[-1])


def task_splits(
    names: dict[str, list[str]], quirks: dict[str, list[str]]
) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[str]]]:
    """Which videos each track holds in each split, and the two quirks this adds.

    ``names`` maps split -> videos (as the expression annotations). One training video is in
    the AU track only. One video is in the other split in the VA track: a validation video in
    its training set, or, with one validation video, a training video in its validation set;
    with too few videos to keep every split of every track non-empty, none.
    """
    train, val = names[SPLITS[0]], names[SPLITS[1]]
    taken = {n for videos in quirks.values() for n in videos}
    lonely = _pick(train, taken)
    moved: list[str] = []
    if len(val) >= 2:
        moved = [_pick(val, taken)]
    elif len(train) >= 3:
        moved = [_pick([n for n in train if n != lonely], taken)]
    layout = {t.name: {s: [n for n in names[s] if n != lonely] for s in SPLITS} for t in (EXPR, VA)}
    layout[AU.name] = {s: list(names[s]) for s in SPLITS}
    for name in moved:
        src, dst = (SPLITS[1], SPLITS[0]) if name in val else (SPLITS[0], SPLITS[1])
        layout[VA.name][src].remove(name)
        layout[VA.name][dst] = sorted([*layout[VA.name][dst], name])
    return layout, {"one_track_only": [lonely], "split_differs": moved}


def write_tasks(
    out: Path, plans: list[tuple[str, VideoPlan]], quirks: dict[str, list[str]]
) -> dict:
    """Write ``out/tracks`` (``out/annotations`` must be written); add the tracks' quirks to
    ``quirks``; return the ``tracks`` entry of ``sample.json``: per track and split, the
    videos, their frames (label lines) and annotated frames, and each AU's positive frames."""
    names = {s: [plan.name for split, plan in plans if split == s] for s in SPLITS}
    layout, added = task_splits(names, quirks)
    quirks.update(added)
    by_name = {plan.name: plan for _, plan in plans}
    values: dict[str, dict[str, np.ndarray]] = {EXPR.name: {}, VA.name: {}, AU.name: {}}
    for name, plan in by_name.items():
        values[EXPR.name][name] = plan.labels
        values[VA.name][name], values[AU.name][name] = task_labels(plan)
    summary: dict = {}
    for task in (EXPR, VA, AU):
        summary[task.name] = {}
        for split in SPLITS:
            videos = layout[task.name][split]
            for name in videos:
                path = out / "tracks" / task.folder / split / f"{name}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                if task is EXPR:
                    shutil.copyfile(out / "annotations" / _split_of(plans, name) / path.name, path)
                else:
                    atomic_write_text(path, format_task_file(task, values[task.name][name]))
            arrays = [values[task.name][n] for n in videos]
            summary[task.name][split] = {"videos": videos, **_split_summary(task, arrays)}
    return summary


MTL_SHARE = 0.25  # of each video's frames with a face: the rows of the sample's MTL files


def mtl_rows(plan: VideoPlan) -> list[str]:
    """One video's rows of the MTL layout: a quarter of its frames with an image, drawn from
    ``default_rng([seed, split_id, 5, k])``, with the three tasks' labels (and markers)."""
    rng = np.random.default_rng([*plan.task_seed[:2], 5, plan.task_seed[-1]])
    frames = len(plan.labels)
    va, au = task_labels(plan)
    chosen = np.flatnonzero(plan.has_image[:frames] & (rng.random(frames) < MTL_SHARE))
    return [
        f"{plan.name}/{i + 1:05d}.jpg,{va[i, 0]:.6g},{va[i, 1]:.6g},{int(plan.labels[i])},"
        + ",".join(str(int(x)) for x in au[i])
        for i in chosen
    ]


def write_mtl(out: Path, plans: list[tuple[str, VideoPlan]]) -> dict:
    """Write ``out/mtl/{training,validation}_set_annotations.txt`` (the multi-task challenge's
    layout, :mod:`abaw_expr.data.mtl`) over the expression splits' videos; return, per split,
    its videos and rows."""
    summary = {}
    for split, file_name in MTL.files.items():
        rows = [row for s, plan in plans if s == split for row in mtl_rows(plan)]
        atomic_write_text(
            out / "mtl" / file_name, ",".join(MTL.columns) + "\n" + "\n".join(rows) + "\n"
        )
        summary[split] = {"videos": [p.name for s, p in plans if s == split], "rows": len(rows)}
    return summary


def _split_of(plans: list[tuple[str, VideoPlan]], name: str) -> str:
    return next(split for split, plan in plans if plan.name == name)


def _split_summary(task: Task, arrays: list[np.ndarray]) -> dict:
    if not arrays:
        return {"frames": 0, "annotated": 0}
    stacked = np.concatenate(arrays)
    mask = annotated(task, stacked)
    summary = {"frames": len(stacked), "annotated": int(mask.sum())}
    if task is AU:
        positive = stacked[mask].sum(axis=0).tolist()
        summary["positive"] = dict(zip(AU_NAMES, positive, strict=True))
    return summary
