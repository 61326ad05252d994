"""The sample's valence-arousal and action-unit tracks: ABAW's layout, labels the faces show,
and the expression sample it grew out of left byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from abaw_expr.data.annotations import SPLITS, read_labels, read_task_file
from abaw_expr.synthetic.sample import FaceParams, write_sample
from abaw_expr.synthetic.sample_plan import plan_sample
from abaw_expr.synthetic.sample_tasks import au_labels, task_labels, task_splits
from abaw_expr.tasks import AU, AU_NAMES, CLASS_NAMES, EXPR, TASKS, VA, Task, annotated

TRAIN, VAL, FRAMES = 6, 3, 150


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tracks")
    return root, write_sample(root, TRAIN, VAL, FRAMES, seed=0, workers=1)


def task_files(root: Path) -> dict[tuple[str, str, str], Path]:
    """(track name, split, video) -> file, for every file under ``tracks/``."""
    files = {}
    for task in TASKS.values():
        for split in SPLITS:
            for path in sorted((root / "tracks" / task.folder / split).glob("*.txt")):
                files[task.name, split, path.stem] = path
    return files


def labelled(root: Path, task: Task) -> dict[str, np.ndarray]:
    """video -> the track's labels, over both splits."""
    return {
        video: read_task_file(path)[1]
        for (name, _, video), path in task_files(root).items()
        if name == task.name
    }


def expression_of(root: Path) -> dict[str, np.ndarray]:
    """video -> its expression labels from ``annotations/`` (every video has one)."""
    return {p.stem: read_labels(p) for p in sorted((root / "annotations").glob("*/*.txt"))}


def params_of(summary: dict) -> dict[str, np.ndarray]:
    """video -> the FaceParams rows its label lines were drawn from (the plan behind the sample)."""
    plans, _ = plan_sample(TRAIN, VAL, summary["frames_per_video"], summary["seed"])
    return {plan.name: plan.params[: len(plan.labels)] for _, plan in plans}


def runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()


def test_every_file_reads_back_in_abaws_layout(sample: tuple[Path, dict]) -> None:
    root, summary = sample
    assert json.loads((root / "sample.json").read_text()) == summary
    assert sorted(p.name for p in (root / "tracks").iterdir()) == sorted(
        t.folder for t in TASKS.values()
    )
    expression = expression_of(root)
    files = task_files(root)
    for (name, split, video), path in files.items():
        task, values = read_task_file(path)
        assert task.name == name
        assert path.read_text().splitlines()[0] == task.header
        assert len(values) == len(expression[video]) == FRAMES
        assert (root / "cropped_aligned" / video).is_dir()
        if task is EXPR:  # a copy of annotations/, byte for byte
            assert path.read_bytes() == (root / "annotations" / split / path.name).read_bytes()
    for task in TASKS.values():
        for split in SPLITS:
            entry = summary["tracks"][task.name][split]
            videos = sorted(v for (n, s, v) in files if (n, s) == (task.name, split))
            assert entry["videos"] == videos
            values = [read_task_file(files[task.name, split, v])[1] for v in videos]
            stacked = np.concatenate(values)
            assert entry["frames"] == len(stacked)
            assert entry["annotated"] == int(annotated(task, stacked).sum())
            if task is AU:
                positive = stacked[annotated(task, stacked)].sum(axis=0).tolist()
                assert list(entry["positive"].values()) == positive


def test_au_labels_are_the_drawn_facial_actions(sample: tuple[Path, dict]) -> None:
    root, summary = sample
    params, expression = params_of(summary), expression_of(root)
    column = {f.name: i for i, f in enumerate(fields(FaceParams))}
    frames = {name: [] for name in (*AU_NAMES, "expr")}
    mouth_dark, closed_dark = [], []
    for video, au in labelled(root, AU).items():
        ok = annotated(AU, au)
        p = params[video]
        assert np.array_equal(au[ok], au_labels(p)[ok])  # the written rows are the drawn face's
        smile, mskew = p[:, column["smile"]], p[:, column["mouth_skew"]]
        mopen, press = np.maximum(p[:, column["mouth_open"]], 0), p[:, column["lip_press"]]
        a = {n: au[:, i] == 1 for i, n in enumerate(AU_NAMES)}
        # Each AU against its parameters, stated independently of au_labels' formulas.
        higher, lower = smile + np.maximum(mskew, 0), smile + np.minimum(mskew, 0)  # corners
        assert (smile[a["AU6"] & ok] > 0.5).all() and (higher[a["AU12"] & ok] > 0.3 - 1e-6).all()
        assert (lower[a["AU15"] & ok] < -0.3 + 1e-6).all()
        assert (mopen[a["AU26"] & ok] > 0.3).all() and (mopen[ok & ~a["AU25"]] <= 0.1 + 1e-6).all()
        assert (press[a["AU24"] & ok] > 0.6).all() and not (a["AU24"] & ~a["AU23"]).any()
        assert not (a["AU26"] & ~a["AU25"]).any()  # a dropped jaw parts the lips
        for name in AU_NAMES:
            frames[name].append(a[name][ok])
        frames["expr"].append(expression[video][ok])
        # The pixels agree: the mouth (rows 92..104, columns 48..64) is darker with the jaw dropped.
        for i in np.flatnonzero(ok):
            image = root / "cropped_aligned" / video / f"{i + 1:05d}.jpg"
            if image.exists() and (a["AU26"][i] or not a["AU25"][i]) and i % 3 == 0:
                with Image.open(image) as im:
                    dark = 255 - np.asarray(im, np.float32)[92:105, 48:65].mean()
                (mouth_dark if a["AU26"][i] else closed_dark).append(dark)
    assert np.mean(mouth_dark) > np.mean(closed_dark) + 20
    expr = np.concatenate(frames["expr"])
    au25 = np.concatenate(frames["AU25"])
    # Not a function of the expression: the lips part in Neutral frames too (talking) and stay
    # closed in some frames of every class they open in (onsets, lapses, intensity).
    assert au25[expr == 0].any() and au25[expr > 0].any()
    for name in AU_NAMES:
        on = np.concatenate(frames[name])
        for c in np.unique(expr[on & (expr >= 0)]):
            assert not on[expr == c].all(), (name, c)


def test_every_au_in_both_splits_of_the_demo_sample() -> None:
    """At the demo's size (20 + 8 videos of 300 frames) every AU is positive on some annotated
    frames of each split (without images: labels only). Smaller samples can miss an AU that
    only one class draws (AU6 happiness, AU10 disgust, AU23/AU24 anger and sadness)."""
    plans, quirks = plan_sample(20, 8, 300, seed=0)
    names = {s: [plan.name for split, plan in plans if split == s] for s in SPLITS}
    layout, _ = task_splits(names, quirks)
    au = {plan.name: task_labels(plan)[1] for _, plan in plans}
    for split in SPLITS:
        rows = np.concatenate([au[v] for v in layout[AU.name][split]])
        rows = rows[annotated(AU, rows)]
        assert (rows.sum(axis=0) > 0).all(), dict(
            zip(AU_NAMES, rows.sum(axis=0).tolist(), strict=True)
        )


def test_valence_arousal_follow_the_face(sample: tuple[Path, dict]) -> None:
    root, summary = sample
    params, expression = params_of(summary), expression_of(root)
    smile_column = [f.name for f in fields(FaceParams)].index("smile")
    va, expr, smile = [], [], []
    for video, values in labelled(root, VA).items():
        ok = annotated(VA, values)
        assert ((values[ok] >= -1) & (values[ok] <= 1)).all()
        assert (values[~ok] == -5).all()
        assert np.array_equal(values, np.round(values.astype(np.float64), 3).astype(np.float32))
        steps = np.abs(np.diff(values, axis=0))[ok[1:] & ok[:-1]]
        assert steps.max() < 0.35  # smooth: a lapse to the rest face is spread over 5 frames
        va.append(values[ok])
        expr.append(expression[video][ok])
        smile.append(params[video][ok, smile_column])
    va, expr, smile = np.concatenate(va), np.concatenate(expr), np.concatenate(smile)
    valence, arousal = va[:, 0], va[:, 1]
    happiness, sadness, surprise = (
        CLASS_NAMES.index(c) for c in ("Happiness", "Sadness", "Surprise")
    )
    assert valence[expr == happiness].mean() > valence[expr == 0].mean() + 0.2
    assert valence[expr == 0].mean() > valence[expr == sadness].mean() + 0.2
    assert arousal[expr == surprise].mean() > arousal[expr == sadness].mean() + 0.4
    assert np.corrcoef(valence, smile)[0, 1] > 0.7
    assert valence.std() > 0.1 and arousal.std() > 0.1


def test_unannotated_stretches_of_each_task(sample: tuple[Path, dict]) -> None:
    root, _ = sample
    expression = expression_of(root)
    for task in (VA, AU):
        own = []
        for video, values in labelled(root, task).items():
            gone = ~annotated(task, values)
            if task is AU:
                assert (values[gone] == -1).all()
            own += runs(gone & (expression[video] >= 0))  # where the expression is annotated
        assert any(n >= 10 for n in own), task.name
    va, au = labelled(root, VA), labelled(root, AU)
    assert any(
        not np.array_equal(annotated(VA, va[v]), annotated(AU, au[v])) for v in set(va) & set(au)
    ), "VA and AU are unannotated on the same frames everywhere"


def test_one_task_video_and_split_that_differs(sample: tuple[Path, dict]) -> None:
    root, summary = sample
    quirks, files = summary["quirks"], task_files(root)
    where = {}
    for name, split, video in files:
        where.setdefault(video, {})[name] = split
    [lonely] = quirks["one_track_only"]
    assert where[lonely] == {"au": "Train_Set"}
    assert (root / "annotations" / "Train_Set" / f"{lonely}.txt").is_file()
    assert any((root / "cropped_aligned" / lonely).iterdir())
    assert [v for v, tasks in where.items() if len(tasks) == 1] == [lonely]
    [moved] = quirks["split_differs"]
    assert where[moved] == {"expr": "Validation_Set", "va": "Train_Set", "au": "Validation_Set"}
    assert [v for v, tasks in where.items() if len(set(tasks.values())) > 1] == [moved]
    for task in TASKS.values():  # every split of every task holds videos
        assert all(summary["tracks"][task.name][split]["videos"] for split in SPLITS)


def test_same_seed_same_task_files_and_a_rewrite_replaces_them(tmp_path: Path) -> None:
    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "tracks").rglob("*"))
            if p.is_file()
        }

    write_sample(tmp_path / "a", 3, 1, 100, seed=5, workers=1)
    write_sample(tmp_path / "b", 3, 1, 100, seed=5, workers=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    write_sample(tmp_path / "a", 2, 1, 100, seed=5, workers=1)  # fewer videos: none left over
    videos = {Path(name).stem for name in digest(tmp_path / "a")}
    assert videos == {p.name for p in (tmp_path / "a" / "cropped_aligned").iterdir()}
