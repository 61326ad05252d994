"""Run reports and run comparisons, on a tiny trained run, its evaluation and hand-made logs."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from abaw_expr.errors import InputError
from abaw_expr.evaluation.evaluate import evaluate
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.report import compare_runs, write_run_report
from abaw_expr.report.runs import read_epoch_metrics
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES
from abaw_expr.training.loop import train

from .conftest import tiny_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluation(trained_run, tiny_sample, tmp_path_factory) -> Path:
    """``abaw-expr evaluate`` of the tiny run on the tiny validation split."""
    out = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABAW_EXPR_CACHE", str(out / "cache"))
        evaluate(
            trained_run / "best.ckpt",
            tiny_sample / "cropped_aligned",
            tiny_sample / "annotations" / "Validation_Set",
            out,
            InferenceSettings(stride=8, device="cpu", num_workers=0),
        )
    return out


def copy_run(run: Path, dest: Path) -> Path:
    """The run folder without its checkpoints (the report does not read them)."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("*.ckpt"))
    return dest


def percent(f1: float) -> str:
    return f"{100 * f1:.2f} %"


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def assert_self_contained(page: str) -> None:
    assert not re.search(r"<script|<link|@import|url\(", page, re.IGNORECASE)
    for uri in re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page, re.IGNORECASE):
        assert uri.startswith("data:image/png;base64,"), uri
    assert not re.search(r"https?://", page)


def assert_figures(page: str, figure_dir: Path, names: set[str]) -> None:
    """The page embeds exactly the PNG files of ``figure_dir``, which are ``names``."""
    files = sorted(figure_dir.glob("*.png"))
    assert {f.stem for f in files} == names
    embedded = embedded_pngs(page)
    assert sorted(embedded) == sorted(f.read_bytes() for f in files)
    for png in embedded:
        assert png.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()


def result_line(page: str) -> str:
    return re.search(r'<p class="result">(.*?)</p>', page, re.DOTALL).group(1)


def test_report_of_an_evaluated_run(trained_run, tiny_sample, evaluation, tmp_path):
    out = write_run_report(
        trained_run,
        eval_dir=evaluation,
        annotations_dir=tiny_sample / "annotations" / "Validation_Set",
        out=tmp_path / "pages" / "run.html",
    )
    assert out == tmp_path / "pages" / "run.html"
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert_figures(
        page,
        tmp_path / "pages" / "run",
        {"training_curves", "lr_schedule", "confusion", "per_class", "timelines"},
    )
    metrics = json.loads((evaluation / "metrics.json").read_text())
    result = result_line(page)
    assert f"<b>{percent(metrics['macro_f1'])}</b>" in result
    assert "35.87 %" in result and "23 %" in result and "Aff-Wild2" in result
    assert "synthetic sample" in result and "not comparable" in result
    for name in CLASS_NAMES:  # the per-class table
        assert f"<td>{name}</td><td class=num>{percent(metrics['per_class_f1'][name])}</td>" in page
    assert "for the 2 of 2 validation videos" in page
    absent = [
        n for n, row in zip(CLASS_NAMES, metrics["confusion_matrix"], strict=True) if not sum(row)
    ]
    assert absent and f"No frame of {', '.join(absent)} in this split" in page
    assert "Skipped: the learning-rate finder did not run" in page
    assert not (trained_run / "report.html").exists()  # out= was honoured


def test_report_without_evaluation_says_what_it_skips(trained_run, evaluation, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")
    shutil.copytree(evaluation, run / "eval")  # the <run>/eval convention is found
    with_eval = write_run_report(run).read_text(encoding="utf-8")
    assert (run / "report.html").is_file() and len(embedded_pngs(with_eval)) == 5

    shutil.rmtree(run / "eval")
    page = write_run_report(run).read_text(encoding="utf-8")
    assert_self_contained(page)
    assert_figures(page, run / "report", {"training_curves", "lr_schedule"})  # stale ones removed
    assert "Skipped: no evaluation" in page
    best = json.loads((run / "run.json").read_text())["best_macro_f1"]
    result = result_line(page)
    assert f"<b>{percent(best)}</b>" in result and "during training" in result
    assert "One epoch only" in page


def write_csv(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.strip() + "\n")


@pytest.fixture
def hand_made_run(tmp_path) -> Path:
    """A run resumed once, with NaN gaps in its logs and the LR-finder curve in run.json."""
    run = tmp_path / "handmade"
    header = "epoch,lr-AdamW,step,train/loss_epoch,train/loss_step,val/loss,val/macro_f1\n"
    write_csv(
        run / "logs" / "version_0" / "metrics.csv",
        header
        + """
,0.001,0,,,,
0,,0,,2.5,,
0,,3,,,1.5,0.20
0,,3,2.0,,,
,0.001,4,,,,
1,,7,,,nan,0.25
1,,7,1.5,,,
,0.0001,8,,,,
2,,9,,1.0,,
2,,9,1.9,,,
""",
    )
    write_csv(  # resumed from the end of epoch 1: epoch 2 again (its figures win), 3, then stopped as 4 began
        run / "logs" / "version_1" / "metrics.csv",
        header
        + """
,0.0001,8,,,,
2,,11,,,1.1,0.30
2,,11,1.2,,,
,0.00001,12,,,,
3,,15,,,1.0,
3,,15,1.1,,,
,0.00001,16,,,,
""",
    )
    lrs = [1e-5 * 1.5**i for i in range(20)]
    losses = [2.0 - 0.05 * i for i in range(19)] + [float("nan")]
    (run / "run.json").write_text(
        json.dumps(
            {
                "status": "finished",
                "best_macro_f1": 0.3,
                "train_seconds": 3725.0,
                "auto_lr": {"suggested": 2e-4, "lrs": lrs, "losses": losses},
            }
        )
    )
    (run / "config.yaml").write_text("model:\n  variant: only_att\noptim:\n  lr: 0.001\n")
    return run


def test_epoch_metrics_follow_resumes_gaps_and_lr_rows(hand_made_run):
    log = read_epoch_metrics(hand_made_run)
    assert log.series("val/macro_f1") == ([0, 1, 2], [0.20, 0.25, 0.30])
    assert log.series("val/loss") == ([0, 2, 3], [1.5, 1.1, 1.0])  # NaN at epoch 1 left out
    assert log.series("train/loss_epoch") == ([0, 1, 2, 3], [2.0, 1.5, 1.2, 1.1])
    assert log.series("lr-AdamW") == ([0, 1, 2, 3, 4], [1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
    assert "train/loss_step" not in log.values
    assert log.lr_columns() == ["lr-AdamW"]


def test_report_shows_gaps_and_the_lr_finder(hand_made_run, tmp_path):
    page = write_run_report(hand_made_run).read_text(encoding="utf-8")
    assert_self_contained(page)
    assert_figures(page, hand_made_run / "report", {"training_curves", "lr_schedule", "lr_finder"})
    assert "val/loss at epoch 1" in page and "val/macro_f1 at epoch 3" in page
    assert "Learning-rate finder: suggested 0.0002" in page
    assert "<td>training time</td><td>1 h 02 min</td>" in page
    result = result_line(page)
    assert "<b>30.00 %</b>" in result and "synthetic" not in result


def test_report_of_runs_that_logged_little(tmp_path):
    stopped = tmp_path / "stopped"  # stopped in its first epoch: only step rows
    write_csv(
        stopped / "logs" / "version_0" / "metrics.csv",
        "epoch,lr-AdamW,step,train/loss_step\n,0.001,0,\n0,,0,2.5\n",
    )
    (stopped / "run.json").write_text('{"status": "stopped: KeyboardInterrupt"}')
    page = write_run_report(stopped).read_text(encoding="utf-8")
    assert "Skipped: the logs hold no epoch-level loss or F1" in page
    assert "No validation macro F1 yet" in page
    assert_figures(page, stopped / "report", {"lr_schedule"})

    no_logs = tmp_path / "tensorboard"  # no metrics.csv at all
    no_logs.mkdir()
    (no_logs / "config.yaml").write_text("model:\n  variant: combine\n")
    page = write_run_report(no_logs).read_text(encoding="utf-8")
    assert "Skipped: no logs/**/metrics.csv" in page and "Skipped: no lr-* column" in page
    assert_figures(page, no_logs / "report", set())

    one = tmp_path / "one"  # a single epoch: points, and the caption says why there is no curve
    write_csv(
        one / "logs" / "version_0" / "metrics.csv",
        "epoch,step,train/loss_epoch,val/loss,val/macro_f1\n0,3,2.0,1.5,0.2\n",
    )
    page = write_run_report(one).read_text(encoding="utf-8")
    assert "(1 epochs logged). One epoch only: single points, no curve." in page


def test_report_refuses_what_is_not_a_run_or_an_evaluation(trained_run, tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        write_run_report(tmp_path)
    with pytest.raises(InputError, match="no metrics.json"):
        write_run_report(trained_run, eval_dir=tmp_path, out=tmp_path / "r.html")


@pytest.mark.slow  # trains a second run
def test_compare_runs_of_two_variants(trained_run, tiny_sample, evaluation, tmp_path):
    combine = copy_run(trained_run, tmp_path / "combine")
    shutil.copy(evaluation / "metrics.json", combine / "metrics.json")  # the <run> convention
    frames_only = tmp_path / "no_att_trans"
    train(
        tiny_config(model__variant="no_att_trans", trainer__limit_train_batches=2),
        tiny_sample / "annotations",
        frames_only,
        images_dir=tiny_sample / "cropped_aligned",
        enable_progress_bar=False,
    )
    text = compare_runs([combine, frames_only], out_html=tmp_path / "ablation.html")
    lines = text.splitlines()
    assert lines[0].split() == ["combine", "no_att_trans"]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", ln.strip()) for ln in lines[2:])}
    assert rows["model.variant"] == ["combine", "no_att_trans"]
    assert rows["trainer.limit_train_batches"] == ["1.0", "2"]
    assert "data.seq_len" not in rows and "model.heads" not in rows  # the same in both
    runs = [json.loads((r / "run.json").read_text()) for r in (combine, frames_only)]
    assert rows["best val/macro_f1 (training)"] == [percent(r["best_macro_f1"]) for r in runs]
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert rows["macro F1 (evaluate)"] == [percent(metrics["macro_f1"]), "-"]
    for name in CLASS_NAMES:
        assert rows[f"F1 {name}"] == [percent(metrics["per_class_f1"][name]), "-"]
    assert rows["status"] == ["finished", "finished"]

    page = (tmp_path / "ablation.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "<td>no_att_trans</td>" in page and "<td>model.variant</td>" in page
    assert_figures(page, tmp_path / "ablation", {"val_macro_f1"})


def write_seeded_run(folder: Path, variant: str, seed: int, rng) -> dict:
    """A hand-made run of the three tracks, as ``ablate`` leaves it: config.yaml, run.json and
    eval/metrics.json, with figures drawn from ``rng``; returns those figures."""
    folder.mkdir(parents=True)
    tasks = ["expr", "va", "au"]
    config = {"model": {"variant": variant, "tasks": tasks}, "trainer": {"seed": seed}}
    (folder / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    figures = {
        "best_macro_f1": float(rng.uniform()),
        "best_score": float(rng.uniform(0, 3)),
        "macro_f1": float(rng.uniform()),
        "per_class_f1": {name: float(rng.uniform()) for name in CLASS_NAMES},
        "ccc_valence": float(rng.uniform(-1, 1)),
        "ccc_arousal": float(rng.uniform(-1, 1)),
        "f1_per_au": {name: float(rng.uniform()) for name in AU_NAMES},
    }
    run = {"status": "finished", "tracks": tasks, "monitor": "val/score"}
    run |= {k: figures[k] for k in ("best_macro_f1", "best_score")}
    (folder / "run.json").write_text(json.dumps(run))
    va = {k: figures[k] for k in ("ccc_valence", "ccc_arousal")}
    va["score"] = figures["va"] = (va["ccc_valence"] + va["ccc_arousal"]) / 2
    au = {"f1_per_au": figures["f1_per_au"], "score": sum(figures["f1_per_au"].values()) / 12}
    figures["au"] = au["score"]
    expr = {
        "macro_f1": figures["macro_f1"],
        "per_class_f1": figures["per_class_f1"],
        "confusion_matrix": [[0] * len(CLASS_NAMES) for _ in CLASS_NAMES],
    }
    figures["sum"] = figures["macro_f1"] + figures["va"] + figures["au"]
    metrics = {**expr, "tracks": {"expr": {**expr, "score": expr["macro_f1"]}, "va": va, "au": au}}
    metrics["score"] = figures["sum"]
    (folder / "eval").mkdir()
    (folder / "eval" / "metrics.json").write_text(json.dumps(metrics))
    return figures


def test_compare_gives_each_seed_group_the_mean_and_sample_std_of_its_own_runs(tmp_path):
    """Each cell of the mean ± std table is that group's mean and sample std (ddof=1, as the
    docstring of compare and the ablation's table say), computed here from the figures written
    into each run: not all runs pooled, not one seed's figure, not the population std."""
    import numpy as np

    rng = np.random.default_rng(37)
    plan = [
        ("combine", 0),
        ("no_att_trans", 0),
        ("combine", 1),
        ("no_att_trans", 1),
        ("combine", 2),
    ]
    figures: dict[str, list[dict]] = {"combine": [], "no_att_trans": []}
    folders = []
    for variant, seed in plan:  # interleaved: a group is found by its config, not by its place
        folders.append(tmp_path / f"{variant}-seed{seed}")
        figures[variant].append(write_seeded_run(folders[-1], variant, seed, rng))
    # the evaluation is <run>/eval before <run>: a decoy beside it is not read
    decoy = json.loads((folders[2] / "eval" / "metrics.json").read_text())
    decoy["macro_f1"], decoy["tracks"]["va"]["ccc_valence"] = 0.999, -0.999
    (folders[2] / "metrics.json").write_text(json.dumps(decoy))
    # a run alone in its config (no group of seeds), evaluated on the AU track by evaluate
    lone = {name: float(rng.uniform()) for name in AU_NAMES}
    folders.append(tmp_path / "only_att-seed0")
    folders[-1].mkdir()
    config = {"model": {"variant": "only_att", "tasks": ["au"]}, "trainer": {"seed": 0}}
    (folders[-1] / "config.yaml").write_text(json.dumps(config))
    (folders[-1] / "run.json").write_text(json.dumps({"status": "finished", "tracks": ["au"]}))
    (folders[-1] / "eval").mkdir()
    au = {"track": "au", "score": sum(lone.values()) / 12, "f1_per_au": lone}
    (folders[-1] / "eval" / "metrics.json").write_text(json.dumps(au))
    text = compare_runs(folders)
    each, groups = text.split("mean ± std over seeds (runs that differ only in trainer.seed)\n")
    each = [re.split(r"\s{2,}", ln.strip()) for ln in each.strip().splitlines()]
    assert each[0] == [f.name for f in folders]
    runs = {cells[0]: cells[1:] for cells in each[2:]}  # a column per run, in their order
    written = []  # the figures of each run, in their order
    seen = {"combine": 0, "no_att_trans": 0}
    for variant, _ in plan:
        written.append(figures[variant][seen[variant]])
        seen[variant] += 1
    assert runs["CCC valence"] == [f"{f['ccc_valence']:.4f}" for f in written] + ["-"]
    au12 = [f["f1_per_au"]["AU12"] for f in written] + [lone["AU12"]]
    assert runs["F1 AU12"] == [f"{100 * v:.2f} %" for v in au12]
    assert runs["macro F1 (evaluate)"] == [f"{100 * f['macro_f1']:.2f} %" for f in written] + ["-"]
    lines = groups
    lines = lines.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "model.variant=combine",
        "model.variant=no_att_trans",
    ]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", ln.strip()) for ln in lines[2:])}

    def expected(values: list[float], scale: float) -> str:
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        digits = 1 if scale == 100 else 4
        return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"

    checked = {
        "best score (training)": (lambda f: f["best_score"], 1),
        "best val/macro_f1 (training)": (lambda f: f["best_macro_f1"], 100),
        "macro F1 (evaluate)": (lambda f: f["macro_f1"], 100),
        "F1 Happiness": (lambda f: f["per_class_f1"]["Happiness"], 100),
        "F1 Other": (lambda f: f["per_class_f1"]["Other"], 100),
        "VA mean CCC (evaluate)": (lambda f: f["va"], 1),
        "CCC valence": (lambda f: f["ccc_valence"], 1),
        "CCC arousal": (lambda f: f["ccc_arousal"], 1),
        "AU mean F1 (evaluate)": (lambda f: f["au"], 100),
        "F1 AU12": (lambda f: f["f1_per_au"]["AU12"], 100),
        "ABAW sum (evaluate)": (lambda f: f["sum"], 1),
    }
    assert rows["seeds"] == ["0, 1, 2", "0, 1"]
    for title, (figure, scale) in checked.items():
        cells = [expected([figure(f) for f in figures[v]], scale) for v in figures]
        assert rows[title] == cells, title


def test_report_of_a_hand_made_evaluation_shows_the_most_annotated_videos(tmp_path, monkeypatch):
    """The timelines are of the four videos with the most annotated frames, the most first;
    a class without a frame is named, with the bound it puts on macro F1."""
    from abaw_expr.report import html

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"status": "finished"}')
    labels, predictions = tmp_path / "labels", run / "eval" / "predictions"
    labels.mkdir()
    predictions.mkdir(parents=True)
    annotated = {"v1": 3, "v2": 9, "v3": 1, "v4": 7, "v5": 5}  # of 10 frames each
    header = ",".join(CLASS_NAMES)
    for video, n in annotated.items():
        truth = [0] * n + [-1] * (10 - n)
        (labels / f"{video}.txt").write_text(header + "\n" + "\n".join(map(str, truth)) + "\n")
        (predictions / f"{video}.txt").write_text(header + "\n" + "0\n" * 10)
    cm = [[0] * 8 for _ in CLASS_NAMES]
    for i in range(8):
        cm[i][i] = 0 if CLASS_NAMES[i] == "Fear" else 2
    metrics = {
        "macro_f1": 0.875,
        "per_class_f1": {name: 0.0 if name == "Fear" else 1.0 for name in CLASS_NAMES},
        "confusion_matrix": cm,
    }
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    shown = []
    draw = html.figures.timelines
    monkeypatch.setattr(
        html.figures, "timelines", lambda videos: shown.extend(videos) or draw(videos)
    )
    page = write_run_report(run, annotations_dir=labels).read_text(encoding="utf-8")
    assert [name for name, *_ in shown] == ["v2", "v4", "v5", "v1"]
    assert "the 4 of 5 validation videos with the most annotated frames" in page
    assert "No frame of Fear in this split" in page and "cannot exceed 7/8" in page
