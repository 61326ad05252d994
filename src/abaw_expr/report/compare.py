"""``compare_runs``: several runs side by side, e.g. the ablation of the temporal head
(``model.variant`` = combine / only_att / only_trans / no_att_trans).

Per run (one column each): the config keys whose values differ between the runs (from each
``config.yaml``, flattened like ``model.variant``), the best validation macro F1 of training
(``run.json``), the macro and per-class F1 of its evaluation if it has one, epochs, training
time and status. Where a run trained other tracks than the expression track alone, also each
run's tracks, the metric that picked its best epoch and that best value, and the evaluated
track and its ABAW score; valence and arousal CCC, each AU's F1 and the ABAW sum of an evaluation
of those tracks (``ablate`` scores a model of several tracks on each of them). Runs that differ only in ``trainer.seed`` are also summarised as groups:
mean ± standard deviation (sample) of their F1 over the seeds. A run's evaluation is ``<run>/eval/metrics.json``, else ``<run>/metrics.json``
(``abaw-expr evaluate --out RUN/eval`` or ``--out RUN``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abaw_expr.errors import InputError
from abaw_expr.report import figures
from abaw_expr.report.page import Page, duration, number, percent, score_text
from abaw_expr.report.runs import (
    EpochLog,
    best_score,
    best_val_f1,
    find_eval_dir,
    flatten,
    open_run,
    read_config,
    read_epoch_metrics,
    read_eval_metrics,
    read_run_json,
    run_monitor,
    run_tasks,
)
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES, EXPR, SUM_SCORE


@dataclass
class RunSummary:
    path: Path
    run: dict
    config: dict[str, Any]
    log: EpochLog
    best_f1: float | None
    eval_dir: Path | None
    metrics: dict | None
    tasks: list[str]
    monitor: str
    best: float | None  # of ``monitor``

    @property
    def expr_metrics(self) -> dict | None:
        """The evaluation if it is of the expression track."""
        return self.metrics if self.metrics and self.metrics["track"] == "expr" else None

    def task_metrics(self, task: str) -> dict | None:
        """The evaluation of ``track``: ``evaluate``'s one track, or one of the tracks that
        ``ablate`` scores together for a model of several (``metrics.json``'s ``tracks``)."""
        if not self.metrics:
            return None
        joint = self.metrics.get("tracks") or {}
        if task in joint:
            return joint[task]
        return self.metrics if self.metrics["track"] == task and task != "expr" else None


def summarise_run(run_dir: Path | str) -> RunSummary:
    path = open_run(run_dir)
    run, log = read_run_json(path), read_epoch_metrics(path)
    config = flatten(read_config(path))
    tasks = run_tasks(run, config, log)
    monitor = run_monitor(run, tasks)
    eval_dir = find_eval_dir(path)
    return RunSummary(
        path=path,
        run=run,
        config=config,
        log=log,
        best_f1=best_val_f1(run, log)[0],
        eval_dir=eval_dir,
        metrics=read_eval_metrics(eval_dir) if eval_dir else None,
        tasks=tasks,
        monitor=monitor,
        best=best_score(run, log, monitor)[0],
    )


def _other_tasks(runs: Sequence[RunSummary]) -> bool:
    """Whether any run trained other tracks than the expression track alone."""
    return any(r.tasks != ["expr"] for r in runs)


def _eval_score(r: RunSummary) -> str:
    if not r.metrics:
        return "-"
    return number(r.metrics["score"]) if r.metrics["track"] == "va" else percent(r.metrics["score"])


def config_differences(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The flattened keys whose value is not the same in every config (missing counts)."""
    keys = sorted({key for config in configs for key in config})
    missing = object()
    return [k for k in keys if len({repr(c.get(k, missing)) for c in configs}) > 1]


def _labels(paths: Sequence[Path]) -> list[str]:
    """Column titles: the folder names, or the whole paths where two names are the same."""
    names = [p.name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


def _task_rows(runs: Sequence[RunSummary], cell) -> list[tuple[str, list[str]]]:
    """Valence-arousal and action-unit rows of evaluations that have them (their score, then
    valence and arousal, or the F1 of each AU), and the ABAW sum of models of several tracks.
    ``cell(values, scale)`` writes one table cell from the runs' values of one row (a group's
    values for the mean ± std table); ``scale`` 1 is a CCC or a sum, 100 an F1."""
    rows = []
    for task, title, entries, scale in (
        ("va", "VA mean CCC", [("CCC valence", "ccc_valence"), ("CCC arousal", "ccc_arousal")], 1),
        ("au", "AU mean F1", [(f"F1 {name}", name) for name in AU_NAMES], 100),
    ):
        metrics = [r.task_metrics(task) for r in runs]
        if not any(metrics):
            continue
        rows.append((f"{title} (evaluate)", cell([m and m["score"] for m in metrics], scale)))
        for label, key in entries:
            if task == "au":
                values = [m and _au_f1(m, key) for m in metrics]
            else:
                values = [m and m[key] for m in metrics]
            rows.append((label, cell(values, scale)))
    if any(r.metrics and r.metrics.get("tracks") for r in runs):
        sums = [r.metrics["score"] if r.metrics and r.metrics.get("tracks") else None for r in runs]
        rows.append(("ABAW sum (evaluate)", cell(sums, 1)))
    return rows


def _au_f1(metrics: dict, name: str) -> float:
    """One AU's F1: ``f1_per_au`` by name (``ablate``), or a list in AU order (as the report
    reads ``evaluate``'s)."""
    f1 = metrics["f1_per_au"]
    return f1[name] if isinstance(f1, dict) else f1[AU_NAMES.index(name)]


def _cells(values: Sequence[float | None], scale: float) -> list[str]:
    return [("-" if v is None else percent(v) if scale == 100 else number(v)) for v in values]


def comparison_rows(runs: Sequence[RunSummary]) -> list[tuple[str, list[str]]]:
    rows = [
        (key, [str(r.config.get(key, "-")) for r in runs])
        for key in config_differences([r.config for r in runs])
    ]
    if _other_tasks(runs):
        rows.append(("tracks", [" + ".join(r.tasks) for r in runs]))
        rows.append(("monitor", [r.monitor for r in runs]))
        rows.append(("best score (training)", [score_text(r.monitor, r.best) for r in runs]))
    rows.append(("best val/macro_f1 (training)", [percent(r.best_f1) for r in runs]))
    if any(
        r.metrics and r.metrics["track"] != "expr" and not r.metrics.get("tracks") for r in runs
    ):
        rows.append(("track (evaluate)", [r.metrics["track"] if r.metrics else "-" for r in runs]))
        rows.append(("score (evaluate)", [_eval_score(r) for r in runs]))
    if any(r.expr_metrics for r in runs):
        expr = [r.expr_metrics for r in runs]
        rows.append(("macro F1 (evaluate)", [percent(m["macro_f1"]) if m else "-" for m in expr]))
        for i, name in enumerate(CLASS_NAMES):
            values = [percent(m["per_class_f1"][i]) if m else "-" for m in expr]
            rows.append((f"F1 {name}", values))
    rows += _task_rows(runs, _cells)
    rows.append(("epochs logged", [str(len(r.log.epochs)) for r in runs]))
    rows.append(("training time", [duration(r.run.get("train_seconds")) for r in runs]))
    rows.append(("status", [str(r.run.get("status", "-")) for r in runs]))
    return rows


def seed_groups(runs: Sequence[RunSummary]) -> list[list[int]]:
    """Indices of runs whose configs differ only in ``trainer.seed``, groups of two or more."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        key = repr(sorted((k, repr(v)) for k, v in r.config.items() if k != "trainer.seed"))
        groups.setdefault(key, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _mean_std(values: Sequence[float], scale: float = 100) -> str:
    """``mean ± std`` in percent (``scale`` 100, one decimal) or plain (``scale`` 1, four)."""
    import numpy as np

    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return "-"
    digits = 1 if scale == 100 else 4
    std = f" ± {scale * a.std(ddof=1):.{digits}f}" if a.size > 1 else ""
    return f"{scale * a.mean():.{digits}f}{std}"


def seed_group_rows(
    runs: Sequence[RunSummary], groups: Sequence[Sequence[int]]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Header and rows of the mean ± std table: one column per group of seeds."""
    differing = config_differences([runs[g[0]].config for g in groups])
    differing = [k for k in differing if k != "trainer.seed"]
    header = [
        ", ".join(f"{k}={runs[g[0]].config.get(k, '-')}" for k in differing)
        or _labels([runs[g[0]].path])[0]
        for g in groups
    ]
    members = [[runs[i] for i in g] for g in groups]
    rows = [
        ("seeds", [", ".join(str(r.config.get("trainer.seed", "-")) for r in m) for m in members]),
    ]
    if _other_tasks(runs):  # plain numbers: a sum of scores is no percentage
        rows.append(
            (
                "best score (training)",
                [_mean_std([r.best for r in m if r.best is not None], scale=1) for m in members],
            )
        )
    rows += [
        (
            "best val/macro_f1 (training)",
            [_mean_std([r.best_f1 for r in m if r.best_f1 is not None]) for m in members],
        ),
        (
            "macro F1 (evaluate)",
            [_mean_std([r.expr_metrics["macro_f1"] for r in m if r.expr_metrics]) for m in members],
        ),
    ]
    for i, name in enumerate(CLASS_NAMES):
        rows.append(
            (
                f"F1 {name}",
                [
                    _mean_std([r.expr_metrics["per_class_f1"][i] for r in m if r.expr_metrics])
                    for m in members
                ],
            )
        )

    def group_cells(values: Sequence[float | None], scale: float) -> list[str]:
        by_run = dict(zip((id(r) for r in runs), values, strict=True))
        return [
            _mean_std([by_run[id(r)] for r in m if by_run[id(r)] is not None], scale=scale)
            for m in members
        ]

    rows += _task_rows(runs, group_cells)
    return header, rows


def text_table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    table = [["", *header], *[[label, *values] for label, values in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def compare_runs(run_dirs: Sequence[Path | str], out_html: Path | str | None = None) -> str:
    """The comparison as a text table (returned); also as an HTML page if ``out_html`` is given
    (with the validation macro F1 per epoch of every run, its PNG in a folder beside it)."""
    if not run_dirs:
        raise InputError("no run folders to compare")
    runs = [summarise_run(d) for d in run_dirs]
    header = _labels([r.path for r in runs])
    rows = comparison_rows(runs)
    if len(runs) > 1 and not config_differences([r.config for r in runs]):
        rows.insert(0, ("config", ["same"] * len(runs)))
    text = text_table(header, rows)
    groups = seed_groups(runs)
    if groups:
        group_header, group_rows = seed_group_rows(runs, groups)
        text += "\nmean ± std over seeds (runs that differ only in trainer.seed)\n"
        text += text_table(group_header, group_rows)
    if out_html is not None:
        out = Path(out_html)
        page = Page(f"Comparison of {len(runs)} runs", out.parent / out.stem)
        page.table([[label, *values] for label, values in rows], header=["", *header])
        if groups:
            page.table(
                [[label, *values] for label, values in group_rows],
                header=["mean ± std over seeds", *group_header],
            )
        sources = [
            [h, str(r.path), str(r.eval_dir or "-")] for h, r in zip(header, runs, strict=True)
        ]
        page.table(sources, header=["run", "folder", "evaluation"])
        curves = {h: r.log.series(EXPR.score) for h, r in zip(header, runs, strict=True)}
        curves = {h: c for h, c in curves.items() if c[0]}
        if curves:
            png = figures.compare_f1_curves(curves)
            page.figure("val_macro_f1", png, "Validation macro F1 per epoch (val/macro_f1).")
        else:
            page.skipped("no run has val/macro_f1 in its logs: no per-epoch plot.")
            (page.figure_dir / "val_macro_f1.png").unlink(missing_ok=True)
        scores = {h: r.log.series(SUM_SCORE) for h, r in zip(header, runs, strict=True)}
        scores = {h: c for h, c in scores.items() if c[0]}
        if scores:  # runs of other tracks: the sum of their tracks' scores
            png = figures.compare_f1_curves(scores, "score", "validation score per epoch")
            page.figure("val_score", png, "Validation score per epoch (val/score).")
        else:
            (page.figure_dir / "val_score.png").unlink(missing_ok=True)
        page.write(out)
    return text
