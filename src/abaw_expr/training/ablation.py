"""Seeded ablations: each chosen variant trained over N seeds on the same data, one table.

``OUT/<arm>/seed<S>/`` is an ordinary run folder (``train``'s), evaluated into its ``eval/``
(``metrics.json``), so ``report`` and ``compare`` read it like any other run. ``OUT/ablation.json``
and ``OUT/ablation.txt`` hold the table: per arm the seeds run, mean and standard deviation
(sample, ``ddof=1``) of macro F1 and of each class's F1 over the seeds.

An arm is a model variant (``combine``, ``only_att``, ``only_trans``, ``no_att_trans``),
optionally followed by options beyond the paper (:data:`ARM_OPTIONS`, docs/heads.md): today
``+pos`` for the relative position bias (``model.positional=relative``), e.g. ``combine+pos``,
and ``+causal`` for attention to earlier frames only (``model.causal=true``), e.g.
``combine+causal``.
Seeds are ``trainer.seed``, ``trainer.seed + 1``, ...

An interrupted ablation resumes with ``resume=True``: finished runs (``run.json`` finished and
``eval/metrics.json`` written) are kept, a run cut short continues from its ``last.ckpt``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from abaw_expr.config import Config, save_config, validate
from abaw_expr.errors import InputError
from abaw_expr.tasks import CLASS_NAMES
from abaw_expr.writers import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

PLAN_FILE = "ablation.json"
# Options beyond the paper an arm may add to its variant: ``+name`` sets ``model.<key>``.
# (A temporal convolution and a deeper encoder were measured as options too, and lost:
# benchmarks/RESULTS.md, 2026-12-02, issue 23.)
ARM_OPTIONS: dict[str, tuple[str, object]] = {
    "pos": ("positional", "relative"),
    "causal": ("causal", True),  # attention to earlier frames only (live prediction)
}


def split_arm(arm: str) -> tuple[str, list[str]]:
    """``"combine+pos"`` -> ``("combine", ["pos"])``; unchecked."""
    variant, *options = arm.split("+")
    return variant, options


def parse_arms(text: str | Sequence[str]) -> list[str]:
    """``"combine,no_att_trans"`` -> the arms, checked; an unknown one is an InputError."""
    from abaw_expr.model.temporal import VARIANTS

    arms = [a.strip() for a in text.split(",")] if isinstance(text, str) else list(text)
    arms = [a for a in arms if a]
    if not arms:
        raise InputError("--variants: give at least one variant")
    for arm in arms:
        variant, options = split_arm(arm)
        if (
            variant not in VARIANTS
            or any(o not in ARM_OPTIONS for o in options)
            or len(set(options)) != len(options)
        ):
            raise InputError(
                f"--variants: unknown variant {arm!r}; expected one of {', '.join(VARIANTS)}, "
                f"each optionally with {', '.join('+' + o for o in ARM_OPTIONS)}"
            )
    if len(set(arms)) != len(arms):
        raise InputError("--variants: a variant is named twice")
    return arms


def arm_config(base: Config, arm: str, seed: int) -> Config:
    config = copy.deepcopy(base)
    config.model.variant, options = split_arm(arm)
    for option in options:
        key, value = ARM_OPTIONS[option]
        setattr(config.model, key, value)
    config.trainer.seed = seed
    validate(config)
    return config


def mean_std(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()) if a.size else None,
        "std": float(a.std(ddof=1)) if a.size > 1 else None,
    }


def _finished(run_dir: Path) -> dict | None:
    import json

    run_file, metrics = run_dir / "run.json", run_dir / "eval" / "metrics.json"
    if not (run_file.is_file() and metrics.is_file()):
        return None
    if json.loads(run_file.read_text()).get("status") != "finished":
        return None
    return json.loads(metrics.read_text())


def evaluate_on_features(
    checkpoint: Path, features_dir: Path, out_dir: Path, subsets: dict[str, np.ndarray] | None
) -> dict:
    """``metrics.json`` and ``predictions/`` of a checkpoint on a cache's Validation_Set, as
    ``evaluate`` writes them from the images (every annotated frame; the backbone does not run
    again), plus macro F1 and accuracy on each boolean frame mask of ``subsets`` (cache row order)."""
    from abaw_expr.data.feature_cache import FeatureCache, open_split_index
    from abaw_expr.evaluation.evaluate import task_predictions, write_predictions
    from abaw_expr.evaluation.metrics import abaw_sum, expression_scores, task_scores
    from abaw_expr.inference.checkpoint import load_model
    from abaw_expr.inference.probabilities import predict_probabilities

    split = features_dir / "Validation_Set"
    model, config = load_model(checkpoint)
    index = open_split_index(split)
    probs = predict_probabilities(
        model,
        index,
        feature_cache=FeatureCache(split),
        seq_len=config.data.seq_len,
        stride=config.data.eval_stride,
    )
    tasks = tuple(config.model.tasks)
    if tasks == ("expr",):
        metrics = {}
    else:  # every track the checkpoint predicts, each on the frames it annotates
        metrics = {"tracks": {}}
        for task in tasks:
            truth = np.concatenate([task_labels(v, task) for v in index])
            predicted = np.concatenate([task_predictions(p, tasks, task) for p in probs])
            metrics["tracks"][task] = task_scores(task, truth, predicted)
        metrics["score"] = abaw_sum({t: m["score"] for t, m in metrics["tracks"].items()})
    if "expr" in tasks:  # the expression track's keys stay at the top, as before
        labels = np.concatenate([v.labels for v in index])
        predicted = np.concatenate([task_predictions(p, tasks, "expr") for p in probs])
        annotated = labels >= 0
        metrics.update(expression_scores(labels[annotated], predicted[annotated]))
        for name, mask in (subsets or {}).items():
            keep = mask & annotated
            scores = expression_scores(labels[keep], predicted[keep])
            metrics.setdefault("subsets", {})[name] = {
                "macro_f1": scores["macro_f1"],
                "accuracy": float((labels[keep] == predicted[keep]).mean()) if keep.any() else None,
                "frames": int(keep.sum()),
            }
    metrics["checkpoint"] = str(checkpoint)
    metrics["videos"] = len(index)
    write_predictions(out_dir / "predictions", index, probs, tasks)
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def task_labels(video, task: str) -> np.ndarray:
    return {"expr": video.labels, "va": video.va, "au": video.au}[task]


def ablate(
    config: Config,
    annotations_dir: Path | str,
    out_dir: Path | str,
    arms: Sequence[str],
    seeds: int,
    images_dir: Path | str | None = None,
    features_dir: Path | str | None = None,
    resume: bool = False,
    subsets: dict[str, np.ndarray] | None = None,
    on_run: Callable[[str, int, dict], None] | None = None,
) -> dict:
    """Train and evaluate every arm for ``seeds`` seeds; write and return the table.

    ``subsets`` (feature caches only) adds macro F1 and accuracy on those validation frames.
    """
    from abaw_expr.training.loop import train

    arms = parse_arms(arms)
    if seeds < 1:
        raise InputError(f"--seeds: need at least 1 seed, got {seeds}")
    if (images_dir is None) == (features_dir is None):
        raise InputError("give --images (cropped_aligned folder) or --features (a cache)")
    out_dir = Path(out_dir)
    seed_list = [config.trainer.seed + i for i in range(seeds)]
    plan = {"arms": arms, "seeds": seed_list}
    if resume:
        if not (out_dir / PLAN_FILE).is_file():
            raise InputError("nothing to resume: no ablation.json in this folder", out_dir)
        import json

        old = json.loads((out_dir / PLAN_FILE).read_text())
        if old.get("plan") != plan:
            raise InputError(
                f"holds an ablation of {old.get('plan')}, not {plan}; resume it with the same "
                "--variants, --seeds and seed",
                out_dir,
            )
    elif out_dir.exists():
        raise InputError("already exists; choose a new folder, or pass --resume", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    table: dict = {"plan": plan, "data": str(features_dir or images_dir), "arms": {}}
    atomic_write_json(out_dir / PLAN_FILE, table)
    started = time.time()
    for arm in arms:
        results = []
        for seed in seed_list:
            run_dir = out_dir / arm / f"seed{seed}"
            metrics = _finished(run_dir) if resume else None
            if metrics is None:
                metrics = _train_and_evaluate(
                    arm_config(config, arm, seed),
                    annotations_dir,
                    run_dir,
                    images_dir,
                    features_dir,
                    subsets,
                    train,
                )
            else:
                log.info("%s seed %d: finished before, kept", arm, seed)
            results.append(metrics)
            if on_run is not None:
                on_run(arm, seed, metrics)
        table["arms"][arm] = summarise(seed_list, results)
        atomic_write_json(out_dir / PLAN_FILE, table)
    table["seconds"] = time.time() - started
    atomic_write_json(out_dir / PLAN_FILE, table)
    atomic_write_text(out_dir / "ablation.txt", format_table(table))
    return table


def _train_and_evaluate(config, annotations_dir, run_dir, images_dir, features_dir, subsets, train):
    from abaw_expr.evaluation.evaluate import evaluate
    from abaw_expr.inference.settings import InferenceSettings

    partial = (run_dir / "last.ckpt").is_file()
    if not partial and run_dir.exists():  # killed before its first epoch ended: start again
        import shutil

        shutil.rmtree(run_dir)
    run = train(
        config,
        annotations_dir,
        run_dir,
        images_dir=images_dir,
        features_dir=features_dir,
        resume=partial,
        enable_progress_bar=False,
    )
    best = Path(run["best_checkpoint"])
    if features_dir is not None:
        return evaluate_on_features(best, Path(features_dir), run_dir / "eval", subsets)
    if tuple(config.model.tasks) != ("expr",):
        raise InputError("ablations of other tracks than expressions run on a feature cache")
    return evaluate(
        best,
        images_dir,
        validation_split(annotations_dir),
        run_dir / "eval",
        InferenceSettings(num_workers=config.data.num_workers),
    )


def validation_split(annotations_dir: Path | str) -> Path:
    """The validation split's label folder, or the multi-task challenge's validation file."""
    from abaw_expr.data.mtl import find_mtl

    mtl = find_mtl(annotations_dir) or {}
    return mtl.get("Validation_Set", Path(annotations_dir) / "Validation_Set")


def summarise(seeds: Sequence[int], results: Sequence[dict]) -> dict:
    """One arm's row: seeds, per-seed macro F1, mean/std of macro and per-class F1 (and subsets);
    for runs of other tracks, per track the per-seed scores and their mean/std (``tracks``)."""
    row: dict = {"seeds": list(seeds)}
    if "tracks" in results[0]:
        row["tracks"] = {}
        for task, first in results[0]["tracks"].items():
            entry = {"score": [r["tracks"][task]["score"] for r in results]}
            entry["score_stats"] = mean_std(entry["score"])
            for key in ("ccc_valence", "ccc_arousal"):
                if key in first:
                    entry[key] = mean_std([r["tracks"][task][key] for r in results])
            if "f1_per_au" in first:
                entry["f1_per_au"] = {
                    au: mean_std([r["tracks"][task]["f1_per_au"][au] for r in results])
                    for au in first["f1_per_au"]
                }
            row["tracks"][task] = entry
        row["score"] = mean_std([r["score"] for r in results])
    if "macro_f1" not in results[0]:
        return row
    row |= {
        "macro_f1": [r["macro_f1"] for r in results],
        **{f"macro_f1_{k}": v for k, v in mean_std([r["macro_f1"] for r in results]).items()},
        "per_class_f1": {
            name: mean_std([r["per_class_f1"][name] for r in results]) for name in CLASS_NAMES
        },
    }
    for name in results[0].get("subsets", {}):
        row.setdefault("subsets", {})[name] = {
            "macro_f1": mean_std([r["subsets"][name]["macro_f1"] for r in results]),
            "accuracy": mean_std([r["subsets"][name]["accuracy"] or 0.0 for r in results]),
        }
    return row


def pm(stats: dict) -> str:
    """``83.4 ± 1.2`` (percent) from a mean/std pair."""
    if stats["mean"] is None:
        return "-"
    std = "" if stats["std"] is None else f" ± {100 * stats['std']:.1f}"
    return f"{100 * stats['mean']:.1f}{std}"


def format_table(table: dict) -> str:
    from abaw_expr.report.compare import text_table

    arms = table["arms"]
    header = list(arms)
    first = next(iter(arms.values()), {})
    rows = [("seeds", [str(len(a["seeds"])) for a in arms.values()])]
    titles = {"expr": "expression macro F1 %", "va": "VA mean CCC %", "au": "AU mean F1 %"}
    for task in first.get("tracks", {}):
        if task == "expr" and "macro_f1_mean" in first:
            continue  # its rows follow, class by class
        rows.append((titles[task], [pm(a["tracks"][task]["score_stats"]) for a in arms.values()]))
        if task == "va":
            for key in ("ccc_valence", "ccc_arousal"):
                label = f"  CCC {key.removeprefix('ccc_')} %"
                rows.append((label, [pm(a["tracks"]["va"][key]) for a in arms.values()]))
    if "tracks" in first:
        rows.append(("ABAW sum of the tracks %", [pm(a["score"]) for a in arms.values()]))
    if "macro_f1_mean" not in first:
        return "mean ± standard deviation over seeds (sample std)\n" + text_table(header, rows)
    rows.append(
        (
            "macro F1 %",
            [pm({"mean": a["macro_f1_mean"], "std": a["macro_f1_std"]}) for a in arms.values()],
        )
    )
    for name in CLASS_NAMES:
        rows.append((f"F1 {name} %", [pm(a["per_class_f1"][name]) for a in arms.values()]))
    subsets = next(iter(arms.values()), {}).get("subsets", {})
    for name in subsets:
        rows.append(
            (f"macro F1 {name} %", [pm(a["subsets"][name]["macro_f1"]) for a in arms.values()])
        )
        rows.append(
            (f"accuracy {name} %", [pm(a["subsets"][name]["accuracy"]) for a in arms.values()])
        )
    return "mean ± standard deviation over seeds (sample std)\n" + text_table(header, rows)
