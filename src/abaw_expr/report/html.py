"""``write_run_report``: one self-contained HTML page about a run (and its evaluation).

The page needs nothing but itself: the CSS is inline and every figure is embedded as a
``data:image/png;base64`` URI, so it opens offline and can be mailed as one file. The same
PNGs are also written beside it, in a folder named like the page (``report.html`` ->
``report/``), for slides and papers.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import read_labels, read_task_file
from abaw_expr.report import figures
from abaw_expr.report.page import Page, duration, number, percent, score_text
from abaw_expr.report.runs import (
    EpochLog,
    best_score,
    best_val_f1,
    find_eval_dir,
    flatten,
    label_dir,
    open_run,
    read_config,
    read_epoch_metrics,
    read_eval_metrics,
    read_run_json,
    run_monitor,
    run_tasks,
    uses_synthetic_sample,
)
from abaw_expr.tasks import (
    AU_NAMES,
    CLASS_NAMES,
    EXPR,
    MTL,
    SUM_SCORE,
    TASKS,
    VA,
    Task,
    annotated,
)

PAPER_VAL_F1 = 0.3587  # Phan et al. 2022, Aff-Wild2 validation set
BASELINE_VAL_F1 = 0.23  # ABAW3 VGG16 baseline, Aff-Wild2 validation set
TIMELINE_VIDEOS = 4
FIGURES = (
    "training_curves",
    "lr_schedule",
    "lr_finder",
    "expr_curves",
    "va_curves",
    "au_curves",
    "confusion",
    "per_class",
    "timelines",
    "va_timelines",
    "au_f1",
)
# per task: the figure of its validation metrics per epoch, its title, and a label for each of
# the task's logged keys (abaw_expr.tasks)
TASK_CURVES = {
    "expr": ("expr_curves", "expression: validation macro F1", ("macro F1",)),
    "va": ("va_curves", "valence-arousal: validation CCC", ("valence", "arousal", "mean")),
    "au": ("au_curves", "action units: validation mean F1", ("mean F1",)),
}
MONITOR_MEANING = {
    EXPR.score: "the expression macro F1",
    SUM_SCORE: "the sum of the trained tracks' scores, as ABAW ranks several tracks",
}


def write_run_report(
    run_dir: Path | str,
    eval_dir: Path | str | None = None,
    annotations_dir: Path | str | None = None,
    out: Path | str | None = None,
) -> Path:
    """Write the HTML report of a training run; return its path (default ``<run>/report.html``).

    ``eval_dir`` is the output of ``abaw-expr evaluate`` on the validation split (default:
    ``<run>/eval`` or ``<run>`` if it holds ``metrics.json``); ``annotations_dir`` is that
    split's label folder, for the timelines (default: ``Validation_Set`` of the run's
    annotations). Whatever is missing is skipped, and the page says so.
    """
    run_dir = open_run(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    run = read_run_json(run_dir)
    config = flatten(read_config(run_dir))
    log = read_epoch_metrics(run_dir)
    tasks = run_tasks(run, config, log)
    monitor = run_monitor(run, tasks)
    eval_dir = Path(eval_dir) if eval_dir is not None else find_eval_dir(run_dir)
    metrics = read_eval_metrics(eval_dir) if eval_dir is not None else None
    evaluated = TASKS.get(metrics["track"]) if metrics is not None else EXPR  # None: MTL
    if annotations_dir is None and run.get("annotations") and evaluated is not None:
        annotations_dir = label_dir(run["annotations"], evaluated)

    page = Page(f"Run report: {run_dir.name}", out.parent / out.stem)
    if tasks == ["expr"]:
        page.paragraph(_headline(run, log, metrics, annotations_dir), "result")
    else:
        headline = _tasks_headline(run, log, tasks, monitor, metrics, annotations_dir)
        page.paragraph(headline, "result")
    page.table(_run_rows(run_dir, run, config, log, tasks, monitor), align_numbers=False)
    page.heading("Training")
    _training_curves(page, log, monitor)
    if tasks != ["expr"]:
        for task in tasks:
            _task_curves(page, log, task)
    _lr_figures(page, run, log)
    title = MTL.title if evaluated is None else evaluated.title
    page.heading("Evaluation on the validation split" + ("" if evaluated is EXPR else f": {title}"))
    if metrics is None:
        shown = (
            "confusion matrix, per-class F1 and timelines"
            if tasks == ["expr"]
            else "the evaluated track's scores and figures"
        )
        page.skipped(
            "no evaluation (pass the output folder of 'abaw-expr evaluate', or evaluate into "
            f"<run>/eval): {shown} are not shown."
        )
    elif evaluated is None:
        _mtl_evaluation(page, metrics, Path(eval_dir))
    elif evaluated is EXPR:
        _evaluation(page, metrics, Path(eval_dir), annotations_dir)
    elif evaluated is VA:
        _va_evaluation(page, metrics, Path(eval_dir), annotations_dir)
    else:
        _au_evaluation(page, metrics, Path(eval_dir))
    for name in FIGURES:  # a figure of an earlier report that this one does not have
        if name not in page.figures:
            (page.figure_dir / f"{name}.png").unlink(missing_ok=True)
    page.write(out)
    return out


def _headline(run: dict, log: EpochLog, metrics: dict | None, annotations_dir) -> str:
    if metrics is not None:
        f1 = metrics["macro_f1"]
        how = (
            f"abaw-expr evaluate: every annotated frame of {metrics.get('videos', '?')} videos, "
            f"{metrics.get('frames', '?')} frames"
        )
    else:
        f1, epoch = best_val_f1(run, log)
        how = (
            f"best val/macro_f1 during training{_at(epoch)}, on the frames with a face of the "
            "validation windows; 'abaw-expr evaluate' gives the ABAW metric on every frame"
        )
    text = (
        f"Validation macro F1 of this run: <b>{percent(f1)}</b> ({html.escape(how)})."
        if f1 is not None
        else "No validation macro F1 yet: no epoch finished its validation."
    )
    text += (
        f" For reference, on <b>Aff-Wild2</b>'s validation set: {percent(PAPER_VAL_F1)} for the "
        f"paper's model (Phan et al., 2022) and {BASELINE_VAL_F1 * 100:.0f} % for the ABAW3 "
        "VGG16 baseline."
    )
    if uses_synthetic_sample(run, annotations_dir):
        text += (
            " <b>This run is on the synthetic sample, not on Aff-Wild2: its figure is not "
            "comparable with those two.</b>"
        )
    return text


def _tasks_headline(
    run: dict, log: EpochLog, tasks: list[str], monitor: str, metrics: dict | None, annotations_dir
) -> str:
    """The headline of a run of other tracks than the expression track alone: the best value
    of the metric that picked its best epoch, and the evaluated track's ABAW score."""
    best, epoch = best_score(run, log, monitor)
    meaning = MONITOR_MEANING.get(monitor, monitor)
    trained = html.escape(" + ".join(tasks))
    if best is not None:
        text = (
            f"Best {html.escape(monitor)} of this run ({trained}; {html.escape(meaning)}): "
            f"<b>{score_text(monitor, best)}</b>{_at(epoch)}, on the frames with a face of the "
            "validation windows."
        )
    else:
        text = f"No best {html.escape(monitor)} yet ({trained}): no epoch finished its validation."
    if metrics is not None and metrics["track"] == MTL.name:
        text += (
            f" abaw-expr evaluate, {html.escape(MTL.title)}: P_MTL "
            f"<b>{metrics['score']:.4f}</b> ({html.escape(_frames_of(metrics))})."
        )
    elif metrics is not None:
        task = TASKS[metrics["track"]]
        how = (
            f"on every annotated frame of {metrics.get('videos', '?')} videos, "
            f"{metrics.get('frames', '?')} frames"
        )
        text += (
            f" abaw-expr evaluate, {html.escape(task.title)} track: {_score_name(task)} "
            f"<b>{_eval_score(task, metrics['score'])}</b> ({html.escape(how)})."
        )
        if task is EXPR:
            text += (
                f" For reference, on <b>Aff-Wild2</b>'s validation set: {percent(PAPER_VAL_F1)} "
                f"for the paper's model (Phan et al., 2022) and {BASELINE_VAL_F1 * 100:.0f} % "
                "for the ABAW3 VGG16 baseline."
            )
    if uses_synthetic_sample(run, annotations_dir):
        text += (
            " <b>This run is on the synthetic sample, not on Aff-Wild2: its figures are not "
            "comparable with published ones.</b>"
        )
    return text


def _score_name(task: Task) -> str:
    return {"expr": "macro F1", "va": "mean CCC", "au": "mean F1 of the 12 AUs"}[task.name]


def _eval_score(task: Task, value: float) -> str:
    return number(value) if task is VA else percent(value)


def _at(epoch: int | None) -> str:
    return f", epoch {epoch}" if epoch is not None else ""


def _run_rows(
    run_dir: Path, run: dict, config: dict, log: EpochLog, tasks: list[str], monitor: str
) -> list[list[str]]:
    best, epoch = best_score(run, log, monitor)
    finder = run.get("auto_lr") or {}
    rows = [
        ["run folder", str(run_dir)],
        ["status", str(run.get("status", "-"))],
        ["model.variant", str(config.get("model.variant", "-"))],
        ["epochs logged", str(len(log.epochs))],
        ["training time", duration(run.get("train_seconds"))],
        [f"best {monitor} in training", score_text(monitor, best) + _at(epoch)],
        ["learning rate", str(run.get("lr", config.get("optim.lr", "-")))],
        ["LR finder suggestion", str(finder.get("suggested", "not run"))],
        ["data", str(run.get("features") or run.get("images") or "-")],
        ["started", str(run.get("started", "-"))],
        ["commit", f"{run.get('git_commit', '-')} (abaw-expr {run.get('version', '-')})"],
    ]
    if tasks != ["expr"]:
        rows[2:2] = [["tracks", " + ".join(tasks)], ["monitor", monitor]]
    return rows


def _training_curves(page: Page, log: EpochLog, monitor: str) -> None:
    names = ("train/loss_epoch", "val/loss", monitor)
    if not log.files:
        page.skipped(
            "no logs/**/metrics.csv in the run folder (a TensorBoard run, or the logs were "
            "removed): no loss and F1 curves."
        )
        return
    if not any(log.values.get(name) for name in names):
        page.skipped("the logs hold no epoch-level loss or F1: the run stopped in its first epoch.")
        return
    epochs = sorted({e for name in names for e in log.values.get(name, {})})
    if monitor == EXPR.score:
        what, png = "validation macro F1", figures.training_curves(log)
    else:
        what = f"validation score ({monitor})"
        png = figures.training_curves(log, monitor, "score", f"validation score ({monitor})")
    caption = f"Loss and {what} per epoch ({len(epochs)} epochs logged)."
    if len(epochs) == 1:
        caption += " One epoch only: single points, no curve."
    missing = {name: sorted(set(epochs) - set(log.values.get(name, {}))) for name in names}
    gaps = [f"{name} at epoch {', '.join(map(str, e))}" for name, e in missing.items() if e]
    if gaps:
        caption += " No value (NaN or not logged) for " + "; ".join(gaps) + "."
    page.figure("training_curves", png, caption)


def _task_curves(page: Page, log: EpochLog, task: str) -> None:
    """One track's validation metrics per epoch: a figure and the same values as a table."""
    name, title, labels = TASK_CURVES[task]
    columns = list(zip(labels, TASKS[task].logged, strict=True))  # read twice below
    curves = {label: log.series(column) for label, column in columns if column in log.values}
    if not curves:
        page.skipped(f"no {TASKS[task].score} in the logs: no {title} per epoch.")
        return
    page.figure(name, figures.epoch_curves(curves, title, ylabel=title.split(": ")[1]), title)
    epochs = sorted({e for epochs, _ in curves.values() for e in epochs})
    logged = [(label, column) for label, column in columns if column in log.values]
    rows = [[str(e), *(number(log.values[column].get(e)) for _, column in logged)] for e in epochs]
    page.table(rows, header=["epoch", *(f"{label} ({column})" for label, column in logged)])


def _lr_figures(page: Page, run: dict, log: EpochLog) -> None:
    columns = log.lr_columns()
    if columns:
        curves = {name: log.series(name) for name in columns}
        page.figure(
            "lr_schedule",
            figures.lr_schedule(curves),
            "Learning rate per epoch (LearningRateMonitor).",
        )
    else:
        page.skipped("no lr-* column in the logs (no LearningRateMonitor): no learning-rate plot.")
    finder = run.get("auto_lr")
    if not finder:
        page.skipped("the learning-rate finder did not run (optim.auto_lr is false).")
        return
    pairs = [
        (lr, loss)
        for lr, loss in zip(finder.get("lrs", []), finder.get("losses", []), strict=False)
        if math.isfinite(lr) and math.isfinite(loss) and lr > 0
    ]
    if not pairs:
        page.skipped(
            f"the learning-rate finder gave no curve (lr kept at {finder.get('kept', '-')})."
        )
        return
    lrs, losses = zip(*pairs, strict=True)
    caption = f"Learning-rate finder: suggested {finder.get('suggested')}."
    page.figure("lr_finder", figures.lr_finder(lrs, losses, finder.get("suggested")), caption)


def _evaluation(page: Page, metrics: dict, eval_dir: Path, annotations_dir) -> None:
    cm = np.asarray(metrics["confusion_matrix"])
    frames = cm.sum(1).tolist()
    text = f"From {eval_dir / 'metrics.json'}."
    absent = [name for name, n in zip(CLASS_NAMES, frames, strict=True) if n == 0]
    if absent:
        text += (
            f" No frame of {', '.join(absent)} in this split: as in ABAW's scoring their F1 is 0,"
            f" so macro F1 cannot exceed {len(CLASS_NAMES) - len(absent)}/{len(CLASS_NAMES)}."
        )
    page.paragraph(html.escape(text))
    page.figure(
        "confusion",
        figures.confusion(cm),
        "Confusion matrix on the validation split: rows are the true class.",
    )
    page.figure(
        "per_class",
        figures.per_class(metrics["per_class_f1"], frames),
        "Per-class F1 and how many evaluated frames each class has.",
    )
    rows = zip(CLASS_NAMES, metrics["per_class_f1"], frames, strict=True)
    page.table([[n, percent(f), str(k)] for n, f, k in rows], header=["class", "F1", "frames"])
    _timelines(page, eval_dir / "predictions", annotations_dir)


def _timelines(page: Page, predictions_dir: Path, annotations_dir) -> None:
    if annotations_dir is None or not Path(annotations_dir).is_dir():
        page.skipped(f"no label folder for the timelines ({annotations_dir or 'none given'}).")
        return
    annotations_dir = Path(annotations_dir)
    videos = []
    for predicted_file in sorted(predictions_dir.glob("*.txt")):
        label_file = annotations_dir / predicted_file.name
        if label_file.is_file():
            truth, predicted = read_labels(label_file), read_labels(predicted_file)
            n = min(len(truth), len(predicted))
            videos.append((predicted_file.stem, truth[:n], predicted[:n]))
    if not videos:
        page.skipped(
            f"no prediction file in {predictions_dir} has a label file in {annotations_dir}."
        )
        return
    videos.sort(key=lambda v: -int((v[1] >= 0).sum()))  # the most annotated frames first
    shown = videos[:TIMELINE_VIDEOS]
    caption = (
        f"Predicted against true label per frame, for the {len(shown)} of {len(videos)} validation "
        "videos with the most annotated frames; white: no label."
    )
    page.figure("timelines", figures.timelines(shown), caption)


def _va_evaluation(page: Page, metrics: dict, eval_dir: Path, annotations_dir) -> None:
    page.paragraph(html.escape(f"From {eval_dir / 'metrics.json'}: {_frames_of(metrics)}."))
    rows = [
        ["valence", number(metrics["ccc_valence"])],
        ["arousal", number(metrics["ccc_arousal"])],
        ["mean (the track's score)", number(metrics["score"])],
    ]
    page.table(rows, header=["", "CCC"])
    _va_timelines(page, eval_dir / "predictions", annotations_dir)


def _au_evaluation(page: Page, metrics: dict, eval_dir: Path) -> None:
    page.paragraph(html.escape(f"From {eval_dir / 'metrics.json'}: {_frames_of(metrics)}."))
    f1 = metrics["f1_per_au"]
    page.figure("au_f1", figures.au_f1(f1, AU_NAMES), "F1 of each action unit; dashed: their mean.")
    rows = [[name, percent(x)] for name, x in zip(AU_NAMES, f1, strict=True)]
    rows.append(["mean (the track's score)", percent(metrics["score"])])
    page.table(rows, header=["action unit", "F1"])


def _mtl_evaluation(page: Page, metrics: dict, eval_dir: Path) -> None:
    """P_MTL and its three terms, then the expression classes' and the AUs' F1."""
    page.paragraph(html.escape(f"From {eval_dir / 'metrics.json'}: {_frames_of(metrics)}."))
    rows = [
        ["valence CCC", f"{metrics['ccc_valence']:.4f}"],
        ["arousal CCC", f"{metrics['ccc_arousal']:.4f}"],
        ["expression macro F1 (8 classes)", f"{metrics['f1_expr']:.4f}"],
        ["AU mean F1 (12 AUs)", f"{metrics['f1_au']:.4f}"],
        ["P_MTL = mean CCC + expression F1 + AU F1", f"{metrics['score']:.4f}"],
    ]
    page.table(rows, header=["term", "value"])
    frames = np.asarray(metrics["confusion_matrix"]).sum(1)
    page.figure("per_class_f1", figures.per_class(metrics["per_class_f1"], frames), "F1 per class.")
    page.figure("au_f1", figures.au_f1(metrics["f1_per_au"], AU_NAMES), "F1 of each action unit.")


def _frames_of(metrics: dict) -> str:
    return (
        f"every annotated frame of {metrics.get('videos', '?')} videos, "
        f"{metrics.get('frames', '?')} frames"
    )


def _va_timelines(page: Page, predictions_dir: Path, annotations_dir) -> None:
    if annotations_dir is None or not Path(annotations_dir).is_dir():
        page.skipped(f"no label folder for the timelines ({annotations_dir or 'none given'}).")
        return
    videos = []
    for predicted_file in sorted(predictions_dir.glob("*.txt")):
        label_file = Path(annotations_dir) / predicted_file.name
        if not label_file.is_file():
            continue
        task, truth = read_task_file(label_file)
        if task is not VA:
            page.skipped(f"{label_file} holds {task.title} labels, not valence-arousal.")
            return
        predicted = read_task_file(predicted_file, prediction=True)[1]
        n = min(len(truth), len(predicted))
        videos.append((predicted_file.stem, truth[:n], predicted[:n]))
    if not videos:
        page.skipped(
            f"no prediction file in {predictions_dir} has a label file in {annotations_dir}."
        )
        return
    videos.sort(key=lambda v: -int(annotated(VA, v[1]).sum()))  # the most annotated first
    shown = videos[:TIMELINE_VIDEOS]
    caption = (
        f"Valence and arousal per frame against the truth, for the {len(shown)} of {len(videos)} "
        "validation videos with the most annotated frames; gaps in the truth: no label."
    )
    page.figure("va_timelines", figures.va_over_time(shown), caption)
