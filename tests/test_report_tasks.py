"""Reports of runs of the valence-arousal and action-unit tracks (with the expression track),
of their evaluations and of a comparison: the figures each track has, and the numbers shown
equal the logs' and metrics.json's."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from abaw_expr.cli import main
from abaw_expr.data.annotations import read_task_file
from abaw_expr.evaluation.evaluate import evaluate
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.report import compare_runs, figures, write_run_report
from abaw_expr.tasks import AU, AU_NAMES, CLASS_NAMES, EXPR, VA

from .test_report import assert_figures, assert_self_contained, percent, result_line


@pytest.fixture(scope="module")
def joint(joint_run, tiny_sample):
    """The shared run of all three tracks (conftest) and its evaluation of each."""
    root, _ = joint_run
    tracks = tiny_sample / "tracks"
    for task in (EXPR, VA, AU):
        if not (root / f"eval_{task.name}" / "metrics.json").is_file():
            evaluate(
                root / "run" / "best.ckpt",
                tiny_sample / "cropped_aligned",
                tracks / task.folder / "Validation_Set",
                root / f"eval_{task.name}",
                # stride 8: half the windows of the default (evaluation is most of the time)
                InferenceSettings(stride=8, device="cpu", num_workers=0),
            )
    return root


def copy_run(joint: Path, dest: Path, eval_task: str | None = None) -> Path:
    """The joint run without checkpoints, its evaluation of ``eval_task`` as ``<run>/eval``."""
    shutil.copytree(joint / "run", dest, ignore=shutil.ignore_patterns("*.ckpt"))
    if eval_task:
        shutil.copytree(joint / f"eval_{eval_task}", dest / "eval")
    return dest


def logged(run: Path, column: str) -> dict[int, float]:
    """``column`` per epoch, read from the run's metrics.csv on its own."""
    (path,) = (run / "logs").rglob("metrics.csv")
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["epoch"] and r.get(column)]
    return {int(r["epoch"]): float(r[column]) for r in rows if math.isfinite(float(r[column]))}


def table_rows(page: str) -> list[list[str]]:
    return [
        re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", page)
    ]


@pytest.fixture
def recorded(monkeypatch):
    """The data each figure function is given, by name, while the figures are still drawn."""
    calls: dict[str, list] = {}
    for name in ("epoch_curves", "va_over_time", "au_f1", "compare_f1_curves"):
        original = getattr(figures, name)

        def record(*args, _name=name, _original=original, **kwargs):
            calls.setdefault(_name, []).append(args)
            return _original(*args, **kwargs)

        monkeypatch.setattr(figures, name, record)
    return calls


TRAINING = {"training_curves", "lr_schedule", "expr_curves", "va_curves", "au_curves"}


def test_report_of_a_run_of_every_task(joint, tmp_path, recorded):
    run = copy_run(joint, tmp_path / "run")
    page = write_run_report(run).read_text(encoding="utf-8")
    assert_self_contained(page)
    assert_figures(page, run / "report", TRAINING)
    saved = json.loads((run / "run.json").read_text())
    score = logged(run, "val/score")
    best_epoch = max(score, key=score.get)
    result = result_line(page)
    assert "Best val/score of this run (expr + va + au;" in result
    assert f"<b>{saved['best_score']:.4f}</b>, epoch {best_epoch}," in result
    assert f"{score[best_epoch]:.4f}" == f"{saved['best_score']:.4f}"
    assert "synthetic sample" in result and "Skipped: no evaluation" in page
    rows = table_rows(page)
    assert ["tracks", "expr + va + au"] in rows and ["monitor", "val/score"] in rows
    assert ["best val/score in training", f"{saved['best_score']:.4f}, epoch {best_epoch}"] in rows

    columns = {
        "expr_curves": ["val/macro_f1"],
        "va_curves": ["val/ccc_valence", "val/ccc_arousal", "val/ccc"],
        "au_curves": ["val/au_f1"],
    }
    drawn = [curves for curves, *_ in recorded["epoch_curves"]]
    assert len(drawn) == 3
    for curves, (name, names) in zip(drawn, columns.items(), strict=True):
        values = [logged(run, column) for column in names]
        assert len(values[0]) == 2, name  # both epochs validated
        for (epochs, drawn_values), by_epoch in zip(curves.values(), values, strict=True):
            assert dict(zip(epochs, drawn_values, strict=True)) == pytest.approx(by_epoch)
        for epoch in values[0]:  # the table under the figure
            assert [str(epoch), *(f"{v[epoch]:.4f}" for v in values)] in rows, name
    assert list(drawn[1]) == ["valence", "arousal", "mean"]


def test_report_of_the_valence_arousal_evaluation(joint, tiny_sample, tmp_path, recorded):
    run = copy_run(joint, tmp_path / "run", "va")
    page = write_run_report(run).read_text(encoding="utf-8")
    assert_self_contained(page)
    assert_figures(page, run / "report", TRAINING | {"va_timelines"})
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    result = result_line(page)
    assert f"valence-arousal track: mean CCC <b>{metrics['score']:.4f}</b>" in result
    assert f"{metrics['frames']} frames" in result and "35.87" not in result
    assert "Evaluation on the validation split: valence-arousal</h2>" in page
    rows = table_rows(page)
    assert ["valence", f"{metrics['ccc_valence']:.4f}"] in rows
    assert ["arousal", f"{metrics['ccc_arousal']:.4f}"] in rows
    assert ["mean (the track&#x27;s score)", f"{metrics['score']:.4f}"] in rows

    # the curves against the truth: the sample's labels and the written predictions
    (videos,) = recorded["va_over_time"][0]
    labels = tiny_sample / "tracks" / VA.folder / "Validation_Set"
    predictions = sorted((run / "eval" / "predictions").glob("*.txt"))
    assert sorted(name for name, _, _ in videos) == [p.stem for p in predictions]
    for name, truth, predicted in videos:
        full_truth = read_task_file(labels / f"{name}.txt")[1]
        np.testing.assert_array_equal(truth, full_truth[: len(truth)])
        written = read_task_file(run / "eval" / "predictions" / f"{name}.txt", prediction=True)
        np.testing.assert_array_equal(predicted, written[1][: len(predicted)])
        assert len(truth) == min(len(full_truth), len(written[1]))
        assert (truth == -5).any() and not (predicted == -5).any()  # gaps in the truth only


def test_report_of_the_action_unit_evaluation(joint, tmp_path, recorded):
    run = copy_run(joint, tmp_path / "run", "au")
    page = write_run_report(run).read_text(encoding="utf-8")
    assert_figures(page, run / "report", TRAINING | {"au_f1"})
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert f"mean F1 of the 12 AUs <b>{percent(metrics['score'])}</b>" in result_line(page)
    f1, names = recorded["au_f1"][0]
    assert list(names) == list(AU_NAMES)
    assert list(f1) == [metrics["f1_per_au"][name] for name in AU_NAMES]
    rows = table_rows(page)
    for name in AU_NAMES:
        assert [name, percent(metrics["f1_per_au"][name])] in rows
    assert ["mean (the track&#x27;s score)", percent(metrics["score"])] in rows


def test_report_of_the_expression_evaluation_of_the_joint_run(joint, tmp_path):
    run = copy_run(joint, tmp_path / "run", "expr")
    page = write_run_report(run).read_text(encoding="utf-8")
    # the expression figures as for a run of that track alone; timelines from the track's folder
    assert_figures(page, run / "report", TRAINING | {"confusion", "per_class", "timelines"})
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    result = result_line(page)
    assert f"expression track: macro F1 <b>{percent(metrics['macro_f1'])}</b>" in result
    assert "35.87 %" in result and "Aff-Wild2" in result
    for name in CLASS_NAMES:
        assert [name, percent(metrics["per_class_f1"][name])] in [r[:2] for r in table_rows(page)]


def test_evaluate_writes_the_report_of_every_task(joint, tiny_sample, tmp_path):
    split = tiny_sample / "tracks" / AU.folder / "Validation_Set"
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", str(joint / "run" / "best.ckpt"), "--images"]
    args += [str(tiny_sample / "cropped_aligned"), "--annotations", str(split), "--out", str(out)]
    assert main([*args, "--workers", "0", "--device", "cpu", "--stride", "8"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert_figures(page, out / "report", TRAINING | {"au_f1"})
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"<b>{percent(metrics['score'])}</b>" in result_line(page)


def text_rows(table: str) -> dict[str, list[str]]:
    """The rows of a text table of compare_runs, below its header line and rule."""
    lines = table.strip("\n").splitlines()[2:]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", ln.strip()) for ln in lines)}


def test_compare_shows_each_runs_tasks_and_best_score(joint, tmp_path, recorded):
    va_run = copy_run(joint, tmp_path / "va", "va")
    au_run = copy_run(joint, tmp_path / "au")
    shutil.copy(joint / "eval_au" / "metrics.json", au_run / "metrics.json")  # <run> convention
    expr_run = tmp_path / "expr"  # a run of the expression track alone, from before the tracks
    expr_run.mkdir()
    (expr_run / "run.json").write_text('{"status": "finished", "best_macro_f1": 0.3}')
    (expr_run / "config.yaml").write_text("model:\n  variant: combine\n")
    text = compare_runs([va_run, au_run, expr_run], out_html=tmp_path / "tracks.html")
    table, seeds = text.split("\nmean ± std over seeds (runs that differ only in trainer.seed)\n")
    rows = text_rows(table)
    best = f"{json.loads((va_run / 'run.json').read_text())['best_score']:.4f}"
    assert rows["tracks"] == ["expr + va + au", "expr + va + au", "expr"]
    assert rows["monitor"] == ["val/score", "val/score", "val/macro_f1"]
    assert rows["best score (training)"] == [best, best, "30.00 %"]
    assert rows["track (evaluate)"] == ["va", "au", "-"]
    va, au = (json.loads((joint / f"eval_{t}" / "metrics.json").read_text()) for t in ("va", "au"))
    assert rows["score (evaluate)"] == [f"{va['score']:.4f}", percent(au["score"]), "-"]
    assert "macro F1 (evaluate)" not in rows  # no run has an expression evaluation
    # the two copies have one config: a group of seeds, its best score plain, not in percent
    assert text_rows(seeds)["best score (training)"] == [f"{best} ± 0.0000"]

    page = (tmp_path / "tracks.html").read_text(encoding="utf-8")
    assert_figures(page, tmp_path / "tracks", {"val_macro_f1", "val_score"})
    scores = logged(va_run, "val/score")
    ((curves, *_),) = [
        c for c in recorded["compare_f1_curves"] if c[1:] == ("score", "validation score per epoch")
    ]
    assert list(curves) == ["va", "au"]
    for epochs, values in curves.values():
        assert dict(zip(epochs, values, strict=True)) == pytest.approx(scores)


def test_compare_shows_every_task_of_models_evaluated_on_all_of_them(joint, tmp_path):
    """Models of the three tracks, each evaluated on all three as ``ablate`` does: the VA, AU
    and ABAW-sum rows per run and, for two seeds, their mean ± std."""
    from abaw_expr.training.ablation import evaluate_on_features

    runs = []
    for seed in (0, 1):
        run = copy_run(joint, tmp_path / f"seed{seed}")
        config = (run / "config.yaml").read_text()
        (run / "config.yaml").write_text(config.replace("seed: 42", f"seed: {seed}"))
        runs.append(run)
    metrics = [
        evaluate_on_features(joint / "run" / "best.ckpt", joint / "features", run / "eval", None)
        for run in runs
    ]
    va, au = metrics[0]["tracks"]["va"], metrics[0]["tracks"]["au"]
    text = compare_runs(runs, out_html=tmp_path / "joint.html")
    table, seeds = text.split("\nmean ± std over seeds (runs that differ only in trainer.seed)\n")
    rows, groups = text_rows(table), text_rows(seeds)
    assert rows["trainer.seed"] == ["0", "1"]
    assert rows["macro F1 (evaluate)"] == [percent(metrics[0]["macro_f1"])] * 2
    assert rows["VA mean CCC (evaluate)"] == [f"{va['score']:.4f}"] * 2
    assert rows["CCC valence"] == [f"{va['ccc_valence']:.4f}"] * 2
    assert rows["CCC arousal"] == [f"{va['ccc_arousal']:.4f}"] * 2
    assert rows["AU mean F1 (evaluate)"] == [percent(au["score"])] * 2
    for name in AU_NAMES:
        assert rows[f"F1 {name}"] == [percent(au["f1_per_au"][name])] * 2
    assert rows["ABAW sum (evaluate)"] == [f"{metrics[0]['score']:.4f}"] * 2
    assert "track (evaluate)" not in rows  # each run is scored on every track
    assert groups["VA mean CCC (evaluate)"] == [f"{va['score']:.4f} ± 0.0000"]
    assert groups["F1 AU12"] == [f"{100 * au['f1_per_au']['AU12']:.1f} ± 0.0"]
    assert groups["ABAW sum (evaluate)"] == [f"{metrics[0]['score']:.4f} ± 0.0000"]
    page = (tmp_path / "joint.html").read_text(encoding="utf-8")
    cells: dict[str, list[str]] = {}
    for row in table_rows(page):  # the runs' table first, then the seeds' one
        cells.setdefault(row[0], row[1:])
    assert cells["CCC arousal"] == rows["CCC arousal"] and cells["F1 AU26"] == rows["F1 AU26"]
