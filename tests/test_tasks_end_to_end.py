"""Every track from the sample's images to ABAW files: extract once, train on all three
tracks, evaluate each track (= what ``score`` says of the written files) and predict both
submission layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abaw_expr.data.annotations import read_task_file
from abaw_expr.evaluation.evaluate import evaluate, predict_test_set
from abaw_expr.evaluation.scoring import score_predictions
from abaw_expr.evaluation.submission import parse_submission
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.tasks import AU, EXPR, VA


def test_the_joint_run_trains_every_task(joint_run):
    _, run = joint_run
    assert run["status"] == "finished" and run["tracks"] == ["expr", "va", "au"]
    assert np.isfinite(run["best_score"])


@pytest.mark.parametrize("task", [VA, AU, EXPR], ids=["va", "au", "expr"])
def test_evaluate_equals_score_on_its_files_for_each_task(joint_run, tiny_sample, task):
    root, _ = joint_run
    split = tiny_sample / "tracks" / task.folder / "Validation_Set"
    out = root / f"eval_{task.name}"
    metrics = evaluate(
        root / "run" / "best.ckpt",
        tiny_sample / "cropped_aligned",
        split,
        out,
        InferenceSettings(num_workers=0),
    )
    assert metrics["track"] == task.name
    for f in sorted((out / "predictions").iterdir()):
        assert read_task_file(f, prediction=True)[0] is task
    scored = score_predictions(out / "predictions", split)
    assert scored["score"] == pytest.approx(metrics["score"], abs=1e-12)
    assert scored["frames"] == metrics["frames"] > 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["score"] == metrics["score"]


def test_predict_writes_both_layouts_of_every_task(joint_run, tiny_sample):
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
            InferenceSettings(num_workers=0),
        )
        == 2
    )
    for task in (EXPR, VA, AU):
        per_video = {
            v: read_task_file(out / task.name / f"{v}.txt", prediction=True)[1] for v in videos
        }
        assert all(len(values) == 100 for values in per_video.values())
        one_file_task, rows = parse_submission((out / f"{task.name}.csv").read_text())
        assert one_file_task is task and sorted(rows) == videos
        for v in videos:
            assert sorted(rows[v]) == list(range(1, 101))
            np.testing.assert_allclose(
                np.stack([rows[v][i] for i in range(1, 101)]), per_video[v], atol=1e-6
            )


def test_au_thresholds_fitted_on_a_split_are_kept_for_predict(joint_run, tiny_sample, tmp_path):
    from abaw_expr.inference.thresholds import au_thresholds_file, load_au_thresholds

    root, _ = joint_run
    checkpoint = tmp_path / "best.ckpt"  # a copy: the module's other tests use 0.5
    checkpoint.write_bytes((root / "run" / "best.ckpt").read_bytes())
    split = tiny_sample / "tracks" / AU.folder / "Validation_Set"
    plain = evaluate(
        checkpoint,
        tiny_sample / "cropped_aligned",
        split,
        tmp_path / "a",
        InferenceSettings(num_workers=0),
    )
    assert plain["au_thresholds"] == "0.5" and load_au_thresholds(checkpoint) is None
    fitted = evaluate(
        checkpoint,
        tiny_sample / "cropped_aligned",
        split,
        tmp_path / "b",
        InferenceSettings(num_workers=0),
        fit_thresholds=True,
    )
    thresholds = load_au_thresholds(checkpoint)
    assert au_thresholds_file(checkpoint).is_file() and fitted["au_thresholds_fitted_here"]
    assert fitted["score"] >= plain["score"]  # tuned on the frames it is scored on
    assert list(fitted["au_thresholds"].values()) == thresholds.tolist()
    assert score_predictions(tmp_path / "b" / "predictions", split)["score"] == fitted["score"]
    # predict uses them: its AU files are the probabilities at the fitted thresholds
    videos = sorted(p.stem for p in split.iterdir())[:1]
    (tmp_path / "list.txt").write_text(f"{videos[0]},100\n")
    predict_test_set(
        checkpoint,
        tiny_sample / "cropped_aligned",
        tmp_path / "list.txt",
        tmp_path / "p",
        InferenceSettings(num_workers=0),
    )
    predicted = read_task_file(tmp_path / "p" / "au" / f"{videos[0]}.txt", prediction=True)[1]
    evaluated = read_task_file(
        tmp_path / "b" / "predictions" / f"{videos[0]}.txt", prediction=True
    )[1]
    np.testing.assert_array_equal(predicted[: len(evaluated)], evaluated[:100])


def test_fitting_picks_the_best_threshold_per_au():
    from abaw_expr.evaluation.evaluate import fit_au_thresholds

    rng = np.random.default_rng(0)
    truth = (rng.random((400, 12)) < 0.3).astype(np.int8)
    probabilities = np.clip(truth * 0.3 + rng.random((400, 12)) * 0.5, 0, 1)  # positives above 0.3
    truth[:50] = -1
    probabilities[:50] = 0.99  # unannotated frames must not pull the thresholds
    thresholds = fit_au_thresholds(truth, probabilities)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    for unit in range(12):
        keep = truth[:, unit] != -1
        scores = [f1_of(truth[keep, unit], probabilities[keep, unit] >= t) for t in grid]
        assert thresholds[unit] == grid[int(np.argmax(scores))]


def f1_of(truth, predicted) -> float:
    from sklearn.metrics import f1_score

    return f1_score(truth, predicted.astype(int), zero_division=0)
