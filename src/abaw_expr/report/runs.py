"""Reading what a run folder and an evaluation folder hold, for the report and the comparison.

A run folder (``abaw_expr.training.loop.train``) holds ``run.json``, ``config.yaml``, ``best.ckpt``,
``last.ckpt`` and the CSV logs ``logs/version_N/metrics.csv`` (a resumed run adds a version).
An evaluation folder (``abaw_expr.evaluation.evaluate.evaluate``) holds ``metrics.json`` and
``predictions/<video>.txt``. By convention a run's evaluation is ``<run>/eval/`` (``evaluate
--out RUN/eval``) or the run folder itself (``evaluate --out RUN``); :func:`find_eval_dir`
looks there, in that order.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from abaw_expr.errors import InputError, require_dir
from abaw_expr.tasks import (
    AU_NAMES,
    CLASS_NAMES,
    EXPR,
    MTL,
    NUM_CLASSES,
    TASKS,
    Task,
    best_epoch_key,
)

# each track's validation score per epoch, as the module logs it


@dataclass
class EpochLog:
    """Epoch-level metrics of a run: ``values[name][epoch]``, NaN and empty cells left out."""

    values: dict[str, dict[int, float]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """The epochs that have a value of ``name``, and those values."""
        by_epoch = self.values.get(name, {})
        epochs = sorted(by_epoch)
        return epochs, [by_epoch[e] for e in epochs]

    def lr_columns(self) -> list[str]:
        """The columns of Lightning's ``LearningRateMonitor`` (``lr-AdamW``, ...)."""
        return sorted(name for name in self.values if name.startswith("lr-"))

    @property
    def epochs(self) -> list[int]:
        return sorted({e for by_epoch in self.values.values() for e in by_epoch})


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read ({err})", path) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", path)
    return data


def read_run_json(run_dir: Path) -> dict:
    """``run.json``, or ``{}`` where there is none."""
    path = run_dir / "run.json"
    return _read_json(path) if path.is_file() else {}


def read_config(run_dir: Path) -> dict:
    """``config.yaml`` as nested dicts, or ``{}`` where there is none."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"cannot read ({err})", path) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of config sections", path)
    return data


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"variant": "combine"}}`` -> ``{"model.variant": "combine"}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def open_run(run_dir: Path | str) -> Path:
    """``run_dir`` as a Path if it is a run folder; else an InputError naming it."""
    run_dir = require_dir(run_dir, "a run folder")
    if not any((run_dir / name).exists() for name in ("run.json", "config.yaml", "logs")):
        raise InputError("not a run folder: no run.json, config.yaml or logs/ in it", run_dir)
    return run_dir


def log_files(run_dir: Path) -> list[Path]:
    """Every ``metrics.csv`` under ``logs/``, oldest version first."""

    def version(path: Path) -> tuple[int, str]:
        match = re.fullmatch(r"version_(\d+)", path.parent.name)
        return (int(match.group(1)) if match else -1, str(path))

    return sorted((run_dir / "logs").rglob("metrics.csv"), key=version)


def _number(cell: str | None) -> float | None:
    try:
        value = float(cell) if cell not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def read_epoch_metrics(run_dir: Path) -> EpochLog:
    """Epoch-level metrics from the CSV logs; a later version overrides an earlier one.

    Per-step columns (``*_step``) are left out. ``LearningRateMonitor`` rows have no epoch:
    each belongs to the epoch of the next row that has one (it is logged as an epoch starts).
    """
    log = EpochLog(files=log_files(run_dir))
    last_epoch = -1
    for path in log.files:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        pending: list[tuple[str, float]] = []  # lr values waiting for their epoch
        for row in rows:
            epoch = _number(row.get("epoch"))
            if epoch is None:
                pending += [(k, v) for k, v in _cells(row) if k.startswith("lr-")]
                continue
            last_epoch = int(epoch)
            for name, value in pending + _cells(row):
                log.values.setdefault(name, {})[last_epoch] = value
            pending = []
        for name, value in pending:  # the run stopped before that epoch logged anything
            log.values.setdefault(name, {})[last_epoch + 1] = value
    return log


def _cells(row: dict) -> list[tuple[str, float]]:
    cells = []
    for name, cell in row.items():
        value = _number(cell)
        if name not in ("epoch", "step") and not name.endswith("_step") and value is not None:
            cells.append((name, value))
    return cells


def find_eval_dir(run_dir: Path) -> Path | None:
    """``<run>/eval`` or ``<run>`` if it holds ``metrics.json`` (in that order), else None."""
    for candidate in (run_dir / "eval", run_dir):
        if (candidate / "metrics.json").is_file():
            return candidate
    return None


def read_eval_metrics(eval_dir: Path | str) -> dict:
    """``metrics.json`` of ``abaw-expr evaluate``, checked for the keys the report uses.

    ``track`` is ``expr`` where the file has none (written before there were other tracks).
    EXPR's ``per_class_f1`` and AU's ``f1_per_au`` become lists in the order of the classes
    and of :data:`AU_NAMES`."""
    path = Path(eval_dir) / "metrics.json"
    if not path.is_file():
        raise InputError("no metrics.json: not an 'abaw-expr evaluate' output folder", eval_dir)
    metrics = _read_json(path)
    task = metrics.get("track", "expr")
    if task not in TASKS and task != MTL.name:
        raise InputError(f"unknown track {task!r}: expected {', '.join([*TASKS, MTL.name])}", path)
    try:
        if task == MTL.name:
            keys = ("score", "ccc_valence", "ccc_arousal", "f1_expr", "f1_au")
            checked = {k: float(metrics[k]) for k in keys}
            checked["f1_per_au"] = [float(metrics["f1_per_au"][name]) for name in AU_NAMES]
            checked["per_class_f1"] = [float(metrics["per_class_f1"][n]) for n in CLASS_NAMES]
        elif task == "expr":
            checked = _expr_metrics(metrics, path)
        elif task == "va":
            checked = {k: float(metrics[k]) for k in ("ccc_valence", "ccc_arousal", "score")}
        else:
            checked = {
                "score": float(metrics["score"]),
                "f1_per_au": [float(metrics["f1_per_au"][name]) for name in AU_NAMES],
            }
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"missing or malformed entry {err}", path) from None
    return {**metrics, **checked, "track": task}


def _expr_metrics(metrics: dict, path: Path) -> dict:
    f1 = float(metrics["macro_f1"])
    per_class = [float(metrics["per_class_f1"][name]) for name in CLASS_NAMES]
    cm = [[int(x) for x in row] for row in metrics["confusion_matrix"]]
    if len(cm) != NUM_CLASSES or any(len(row) != NUM_CLASSES for row in cm):
        raise InputError(f"confusion_matrix is not {NUM_CLASSES}x{NUM_CLASSES}", path)
    return {"macro_f1": f1, "per_class_f1": per_class, "confusion_matrix": cm}


def run_tasks(run: dict, config: dict, log: EpochLog) -> list[str]:
    """The tracks a run trained: run.json's, else the config's ``model.tasks``, else those
    whose validation score the logs hold; ``["expr"]`` for a run from before the tracks."""
    for tasks in (run.get("tracks"), config.get("model.tasks")):
        if isinstance(tasks, list) and tasks and all(t in TASKS for t in tasks):
            return list(tasks)
    logged = [task.name for task in TASKS.values() if task.score in log.values]
    return logged or ["expr"]


def run_monitor(run: dict, tasks: list[str]) -> str:
    """The metric that chose the best epoch (as ``training.train`` sets it)."""
    monitor = run.get("monitor")
    if isinstance(monitor, str) and monitor:
        return monitor
    return best_epoch_key(tasks)


def best_score(run: dict, log: EpochLog, monitor: str) -> tuple[float | None, int | None]:
    """The best value of ``monitor`` and its epoch: run.json's figure (``best_macro_f1`` or
    ``best_score``), else the logs' best."""
    if monitor == EXPR.score:
        return best_val_f1(run, log)
    epochs, values = log.series(monitor)
    best_epoch = epochs[values.index(max(values))] if values else None
    best = run.get("best_score")
    if isinstance(best, (int, float)) and math.isfinite(best):
        return float(best), best_epoch
    return (max(values), best_epoch) if values else (None, None)


def label_dir(annotations: Path | str, task: Task, split: str = "Validation_Set") -> Path:
    """A split's label folder of ``track`` under a run's ``--annotations``: the track's own
    folder (``<annotations>/<track folder>/<split>``) where it is there, else
    ``<annotations>/<split>`` (``--annotations`` named one track's folder)."""
    for folder in task.folders:
        inside = Path(annotations) / folder / split
        if inside.is_dir():
            return inside
    return Path(annotations) / split


def uses_synthetic_sample(run: dict, *paths: Path | str | None) -> bool:
    """True if the run's data (or any of ``paths``) is the synthetic sample of ``abaw-expr
    sample``: its root holds ``sample.json``."""
    candidates = [run.get("annotations"), run.get("images"), *paths]
    for candidate in candidates:
        if candidate:
            path = Path(candidate)
            if any((p / "sample.json").is_file() for p in (path, *list(path.parents)[:2])):
                return True
    return False


def best_val_f1(run: dict, log: EpochLog) -> tuple[float | None, int | None]:
    """The best ``val/macro_f1`` and its epoch: run.json's figure, else the logs' best."""
    epochs, values = log.series(EXPR.score)
    best_epoch = epochs[values.index(max(values))] if values else None
    best = run.get("best_macro_f1")
    if isinstance(best, (int, float)) and math.isfinite(best):
        return float(best), best_epoch
    return (max(values), best_epoch) if values else (None, None)
