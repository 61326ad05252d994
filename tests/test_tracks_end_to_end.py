"""Every track from the sample's images to ABAW files: extract once, train on all three
tracks, evaluate each track (= what ``score`` says of the written files) and predict both
submission layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from abaw_expr.data.submission import parse_submission
from abaw_expr.data.tracks import AU, EXPR, VA, read_track_file
from abaw_expr.evaluation import evaluate, predict_test_set
from abaw_expr.extraction import extract
from abaw_expr.model import build_backbone
from abaw_expr.scoring import score_predictions
from abaw_expr.training import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def joint_run(tiny_sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("tracks")
    torch.manual_seed(0)
    weights = root / "backbone.safetensors"
    backbone = build_backbone("none", frozen_stages=5)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    tracks = tiny_sample / "tracks"
    extract(
        tiny_sample / "cropped_aligned",
        tracks,
        root / "features",
        weights=str(weights),
        batch_size=32,
        num_workers=0,
        image_size=32,
    )
    config = tiny_config(model__backbone_weights=str(weights), trainer__epochs=2)
    config.model.tasks = ["expr", "va", "au"]
    run = train(config, tracks, root / "run", features_dir=root / "features")
    return root, run


def test_the_joint_run_trains_every_track(joint_run):
    _, run = joint_run
    assert run["status"] == "finished" and run["tracks"] == ["expr", "va", "au"]
    assert np.isfinite(run["best_score"])


@pytest.mark.parametrize("track", [VA, AU, EXPR], ids=["va", "au", "expr"])
def test_evaluate_equals_score_on_its_files_for_each_track(joint_run, tiny_sample, track):
    root, _ = joint_run
    split = tiny_sample / "tracks" / track.folder / "Validation_Set"
    out = root / f"eval_{track.name}"
    metrics = evaluate(
        root / "run" / "best.ckpt", tiny_sample / "cropped_aligned", split, out, num_workers=0
    )
    assert metrics["track"] == track.name
    for f in sorted((out / "predictions").iterdir()):
        assert read_track_file(f, prediction=True)[0] is track
    scored = score_predictions(out / "predictions", split)
    assert scored["score"] == pytest.approx(metrics["score"], abs=1e-12)
    assert scored["frames"] == metrics["frames"] > 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["score"] == metrics["score"]


def test_predict_writes_both_layouts_of_every_track(joint_run, tiny_sample):
    root, _ = joint_run
    videos = sorted(p.name for p in (tiny_sample / "cropped_aligned").iterdir())[:2]
    (root / "test.txt").write_text("\n".join(f"{v},{100}" for v in videos) + "\n")
    out = root / "submission"
    assert (
        predict_test_set(
            root / "run" / "best.ckpt",
            tiny_sample / "cropped_aligned",
            root / "test.txt",
            out,
            num_workers=0,
        )
        == 2
    )
    for track in (EXPR, VA, AU):
        per_video = {
            v: read_track_file(out / track.name / f"{v}.txt", prediction=True)[1] for v in videos
        }
        assert all(len(values) == 100 for values in per_video.values())
        one_file_track, rows = parse_submission((out / f"{track.name}.csv").read_text())
        assert one_file_track is track and sorted(rows) == videos
        for v in videos:
            assert sorted(rows[v]) == list(range(1, 101))
            np.testing.assert_allclose(
                np.stack([rows[v][i] for i in range(1, 101)]), per_video[v], atol=1e-6
            )
