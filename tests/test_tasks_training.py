"""Several ABAW tracks over the same videos: the merged index, the leakage rule, a feature
cache that carries every track's labels, and training on any subset of them."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from abaw_expr.data.annotations import format_task_file
from abaw_expr.data.datamodule import ExpressionDataModule
from abaw_expr.data.feature_cache import CacheWriter, backbone_id, cached_tasks, open_split_index
from abaw_expr.data.task_index import build_task_index, choose_tasks, find_tasks
from abaw_expr.errors import InputError
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.model import build_backbone
from abaw_expr.tasks import AU, EXPR, VA
from abaw_expr.training.loop import data_tasks, train

from .conftest import tiny_config

# video -> {track: split}; c's split differs between tracks; f is in one track only
LAYOUT = {
    "a": {"expr": "Train_Set", "va": "Train_Set", "au": "Train_Set"},
    "b": {"expr": "Train_Set", "va": "Train_Set"},
    "c": {"expr": "Train_Set", "va": "Validation_Set"},
    "d": {"expr": "Validation_Set", "va": "Validation_Set", "au": "Validation_Set"},
    "e": {"expr": "Validation_Set", "au": "Validation_Set"},
    "f": {"au": "Train_Set"},
}
LENGTHS = {"expr": 90, "va": 96, "au": 80}  # annotation lengths differ between tracks
TASKS = {"expr": EXPR, "va": VA, "au": AU}


def labels_for(task: str, video: str, n: int) -> np.ndarray:
    """Labels that a feature can carry: a slow cycle per video, some frames unannotated."""
    t = np.arange(n) + 17 * ord(video)
    if task == "expr":
        values = ((t // 10) % 3 * 2).astype(np.int8)  # Neutral, Disgust, Happiness
        values[:5] = -1
    elif task == "va":
        values = np.stack([np.sin(t / 9), np.cos(t / 13)], 1).round(3).astype(np.float32)
        values[10:14] = -5
    else:
        values = np.zeros((n, 12), np.int8)
        values[:, 0] = (t // 7) % 2
        values[:, 6] = (t // 11) % 2
        values[20:25] = -1
    return values


def write_layout(root):
    for video, splits in LAYOUT.items():
        (root / "images" / video).mkdir(parents=True)
        for frame in range(1, 86):  # images end before the annotations do
            (root / "images" / video / f"{frame:05d}.jpg").touch()
        for task, split in splits.items():
            path = root / "ann" / TASKS[task].folder / split / f"{video}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            values = labels_for(task, video, LENGTHS[task])
            path.write_text(format_task_file(TASKS[task], values))
    return root / "images", root / "ann"


def test_tasks_are_found_in_either_layout(tmp_path):
    images, ann = write_layout(tmp_path)
    assert list(find_tasks(ann)) == ["expr", "va", "au"]
    va_only = find_tasks(ann / VA.folder)  # one track's folder: its header tells which
    assert list(va_only) == ["va"] and set(va_only["va"]) == {"Train_Set", "Validation_Set"}
    with pytest.raises(InputError, match="no action units annotations"):
        choose_tasks(find_tasks(ann / VA.folder), ["au"], ann)
    with pytest.raises(InputError, match="nor a task folder"):
        find_tasks(images)


def test_merged_index_and_the_leakage_rule(tmp_path, caplog):
    images, ann = write_layout(tmp_path)
    with caplog.at_level(logging.WARNING):
        indexes = build_task_index(images, find_tasks(ann))
    train, val = indexes["Train_Set"], indexes["Validation_Set"]
    # c is validated on by the VA track: none of its frames is trained on, and a warning says so
    assert [v.name for v in train] == ["a", "b", "f"]
    assert [v.name for v in val] == ["c", "d", "e"]
    assert any("video c is left out of training" in r.getMessage() for r in caplog.records)
    a, f = train.videos[0], train.videos[2]
    assert a.num_frames == max(LENGTHS.values())  # the longest annotation
    np.testing.assert_array_equal(a.va[: LENGTHS["va"]], labels_for("va", "a", LENGTHS["va"]))
    assert (a.labels[LENGTHS["expr"] :] == -1).all() and (a.au[LENGTHS["au"] :] == -1).all()
    assert a.has_image[:85].all() and not a.has_image[85:].any()
    assert not f.annotated_for("expr").any() and not f.annotated_for("va").any()
    assert f.annotated_for("au").sum() == LENGTHS["au"] - 5
    c = val.videos[0]  # in validation with its VA labels; its EXPR labels were training ones
    assert c.annotated_for("va").any() and not c.annotated_for("expr").any()


@pytest.fixture
def three_task_cache(tmp_path):
    """A feature cache over the layout whose features carry each track's labels, plus noise."""
    images, ann = write_layout(tmp_path)
    torch.manual_seed(0)
    weights = tmp_path / "backbone.safetensors"
    backbone = build_backbone("none", frozen_stages=5)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    rng = np.random.default_rng(0)
    for split, index in build_task_index(images, find_tasks(ann)).items():
        writer = CacheWriter(tmp_path / "f" / split, index, backbone_id(str(weights)), images)
        for pos, v in enumerate(index):
            features = rng.normal(0, 0.3, (v.num_frames, 888)).astype(np.float32)
            features[:, 0:3] += np.eye(3)[np.clip(v.labels, 0, None) // 2] * 3
            features[:, 3:5] += np.where(v.va == -5, 0, v.va) * 3
            features[:, 5:17] += np.clip(v.au, 0, None) * 3
            rows = writer.offsets[pos] + np.arange(v.num_frames)
            writer.write(rows, features, np.ones(v.num_frames, bool))
            writer.finish(pos)
    return tmp_path, ann, weights


def test_the_cache_carries_every_tasks_labels(three_task_cache):
    root, ann, _ = three_task_cache
    train_index = open_split_index(root / "f" / "Train_Set")
    assert cached_tasks(train_index) == ["expr", "va", "au"]
    assert data_tasks(ann, root / "f") == ["expr", "va", "au"] == data_tasks(ann)
    reference = build_task_index(root / "images", find_tasks(ann))["Train_Set"]
    for cached, built in zip(train_index, reference, strict=True):
        np.testing.assert_array_equal(cached.va, built.va)
        np.testing.assert_array_equal(cached.au, built.au)
        np.testing.assert_array_equal(cached.labels, built.labels)


@pytest.mark.parametrize("tasks", [["va"], ["au"], ["expr", "va", "au"]])
def test_training_on_chosen_tasks(three_task_cache, tasks):
    root, ann, weights = three_task_cache
    config = tiny_config(trainer__epochs=3, model__backbone_weights=str(weights), data__seq_len=16)
    config.model.tasks = tasks
    run = train(config, ann, root / "run", features_dir=root / "f", enable_progress_bar=False)
    assert run["tracks"] == tasks and run["monitor"] == "val/score"
    assert "best_macro_f1" not in run and run["best_score"] > 0
    metrics = (next((root / "run" / "logs").rglob("metrics.csv"))).read_text().splitlines()
    header = metrics[0].split(",")
    assert ("val/ccc" in header) == ("va" in tasks) and ("val/au_f1" in header) == ("au" in tasks)
    assert ("val/macro_f1" in header) == ("expr" in tasks)
    model, _ = load_model(root / "run" / "best.ckpt")
    assert model.head.tasks == tuple(tasks)
    state = torch.load(root / "run" / "best.ckpt", weights_only=True)["state_dict"]
    assert ("loss.au_pos_weight" in state) == ("au" in tasks)
    if "au" in tasks:  # negatives over positives of the training frames
        au = np.concatenate(
            [v.au[v.annotated_for("au")] for v in open_split_index(root / "f" / "Train_Set")]
        )
        expected = (au[:, 0] == 0).sum() / (au[:, 0] == 1).sum()
        assert state["loss.au_pos_weight"][0].item() == pytest.approx(expected, rel=1e-6)
        assert state["loss.au_pos_weight"][1].item() == 1.0  # never positive
    saved = json.loads((root / "run" / "run.json").read_text())
    assert saved["best_score"] == run["best_score"]


def test_asking_for_a_task_the_cache_lacks(three_task_cache):
    root, ann, _ = three_task_cache
    for split in ("Train_Set", "Validation_Set"):  # the cache of a VA and EXPR extraction
        path = root / "f" / split / "index.npz"
        with np.load(path) as data:
            arrays = {k: v for k, v in data.items() if k != "au"}
        np.savez(path, **arrays)
    assert cached_tasks(open_split_index(root / "f" / "Train_Set")) == ["expr", "va"]
    datamodule = ExpressionDataModule(
        tiny_config().data, ann, features_dir=root / "f", tasks=["au"]
    )
    with pytest.raises(InputError, match="holds no au labels"):
        datamodule.prepare_data()


def test_stats_of_every_task(tmp_path, capsys):
    from abaw_expr.cli import main

    images, ann = write_layout(tmp_path)
    assert main(["stats", "--images", str(images), "--annotations", str(ann), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    train = stats["Train_Set"]
    assert train["va"]["videos"] == 2 and train["au"]["videos"] == 2  # a, b; a, f (c left out)
    assert train["va"]["annotated"] == 2 * (LENGTHS["va"] - 4)
    assert train["va"]["usable"] == 2 * (85 - 4)  # images end at frame 85
    usable_au = [labels_for("au", v, LENGTHS["au"]) for v in ("a", "f")]
    expected = sum(int((u[u[:, 0] >= 0, 0] == 1).sum()) for u in usable_au)
    assert train["au"]["positive"]["AU1"] == expected
    assert sum(train["expr"]["per_class"].values()) == train["expr"]["usable"]
    assert main(["stats", "--images", str(images), "--annotations", str(ann)]) == 0
    assert "positive: AU1" in capsys.readouterr().out


def test_training_windows_cover_the_chosen_tasks_frames_only(three_task_cache):
    root, ann, _ = three_task_cache
    datamodule = ExpressionDataModule(
        tiny_config().data, ann, features_dir=root / "f", tasks=["va"]
    )
    datamodule.setup("fit")
    train_index = datamodule.indexes["Train_Set"]
    assert all(v.au is None and not (v.labels >= 0).any() for v in train_index)
    frames = {
        (pos, int(f)) for pos, window, mask in datamodule.train_set.windows for f in window[mask]
    }
    expected = {
        (pos, int(f))
        for pos, v in enumerate(train_index)
        for f in np.flatnonzero(v.annotated_for("va") & v.has_image)
    }
    assert frames == expected  # f, annotated for AU only, gives no training window
