"""What causal predictions cost: the demo's head on the sample's validation videos, each face
predicted from centred, overlapping windows (``predict --video``, files) against from the window
that ends at it (``live``: no later frame).

    python benchmarks/causal.py [--run DEMO_OUT | --work DIR] [--seeds 3] [--epochs 8]
                                [--arms combine,combine+causal] [--json]

The sample, the demo's seeded random frozen RegNetY-1.6GF and its cached features are made as
the demo makes them (stages 1-2, 16 + 8 videos of 200 frames), in ``--work`` (kept, reused by a
later run with the same ``--work``) or a temporary folder; or taken from a finished demo folder
(``--run``: its ``features/`` and ``sample/tracks/``). Each arm is trained as the demo trains
its heads (one model for expressions, valence-arousal and action units, 8 epochs), over the
seeds 0, 1, ...; every checkpoint is then scored on every annotated validation frame twice:

- ``centred``: :func:`~abaw_expr.inference.probabilities.window_probabilities` (windows of 64
  every 32, averaged where they overlap, nearest-face fill), what ``evaluate`` scores;
- ``causal``: :func:`~abaw_expr.inference.causal.causal_probabilities` (each face the last
  position of the window of its last 64 faces; a frame without a face the last earlier one).

Printed per arm, way and track: mean ± std over the seeds (percent: macro F1, mean CCC, mean AU
F1, and their ABAW sum), and per arm ``causal - centred`` as the mean ± std of the per-seed
differences (paired: the same checkpoint). With ``combine+causal`` (``model.causal``, a head
trained causal), also its causal figures against those of the same head trained without it
(``combine``), as the mean ± std of the per-seed differences; likewise ``combine+pos`` against
``combine+pos+causal``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from report import emit, environment  # benchmarks/report.py, beside this script

TRACKS = ("expr", "va", "au")
WAYS = ("centred", "causal")


def prepare(work: Path) -> tuple[Path, Path]:
    """The demo's stages 1-2 in ``work`` (once): its sample, backbone and cached features."""
    from abaw_expr.synthetic.demo import SAMPLE, _feature_stage
    from abaw_expr.synthetic.sample import write_sample

    features, tracks = work / "features", work / "sample" / "tracks"
    if (features / "Validation_Set" / "done.npy").is_file() and tracks.is_dir():
        return features, work / "backbone.safetensors"
    work.mkdir(parents=True, exist_ok=True)
    write_sample(work / "sample", seed=0, **SAMPLE)
    return _feature_stage(work / "sample", work, 0, False)


def scores(checkpoint: Path, features: Path) -> dict[str, dict[str, float]]:
    """``{way: {track: score, "sum": ABAW sum}}`` of a checkpoint on the cached validation split."""
    from abaw_expr.data.feature_cache import FeatureCache, open_split_index
    from abaw_expr.evaluation.evaluate import task_predictions
    from abaw_expr.evaluation.metrics import abaw_sum, task_scores
    from abaw_expr.inference.causal import causal_probabilities
    from abaw_expr.inference.checkpoint import load_model
    from abaw_expr.inference.probabilities import window_probabilities
    from abaw_expr.training.ablation import task_labels

    model, config = load_model(checkpoint)
    head, tasks = model.head.eval(), tuple(config.model.tasks)
    split = features / "Validation_Set"
    index, cache = open_split_index(split), FeatureCache(split)
    seq_len, stride = config.data.seq_len, config.data.eval_stride
    values: dict[str, list[np.ndarray]] = {way: [] for way in WAYS}
    for video in index:
        frames = np.flatnonzero(video.has_image)
        x = torch.from_numpy(cache.read(video.name, frames))
        n = video.num_frames
        values["centred"].append(window_probabilities(head, x, frames, n, seq_len, stride))
        values["causal"].append(causal_probabilities(head, x, frames, n, seq_len))
    out = {}
    for way, per_video in values.items():
        out[way] = {
            task: task_scores(
                task,
                np.concatenate([task_labels(v, task) for v in index]),
                np.concatenate([task_predictions(p, tasks, task) for p in per_video]),
            )["score"]
            for task in tasks
        }
        out[way]["sum"] = abaw_sum({t: out[way][t] for t in tasks})
    return out


def pm(values) -> str:
    """``53.2 ± 4.7`` in percent (sample std over the seeds)."""
    a = 100 * np.asarray(values, dtype=np.float64)
    return f"{a.mean():.1f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--run", type=Path, help="a finished demo folder (features reused)")
    where.add_argument("--work", type=Path, help="a folder for the sample and features (kept)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--arms", default="combine", help="ablate's arms, e.g. combine,combine+causal"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from abaw_expr.synthetic.demo import head_stage_config
    from abaw_expr.training.ablation import ablate, parse_arms

    arms = parse_arms(args.arms)
    result = {**environment(), "seeds": args.seeds, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        if args.run is not None:
            features, backbone = args.run / "features", args.run / "backbone.safetensors"
            tracks = args.run / "sample" / "tracks"
        else:
            work = args.work or Path(tmp) / "work"
            features, backbone = prepare(work)
            tracks = work / "sample" / "tracks"
        result["features seconds"] = round(time.time() - started)
        started = time.time()
        config = head_stage_config("combine", backbone, 0, args.epochs)
        table = ablate(config, tracks, Path(tmp) / "runs", arms, args.seeds, features_dir=features)
        result["train seconds"] = round(time.time() - started)
        started = time.time()
        seeds = table["plan"]["seeds"]
        per_seed = {  # arm -> per seed -> way -> track -> score
            arm: [
                scores(Path(tmp) / "runs" / arm / f"seed{s}" / "best.ckpt", features) for s in seeds
            ]
            for arm in arms
        }
        result["score seconds"] = round(time.time() - started)
        # the centred scores are ablate's own (evaluate_on_features): a check of this script
        for arm in arms:
            for task in TRACKS:
                theirs = table["arms"][arm]["tracks"][task]["score"]
                ours = [r["centred"][task] for r in per_seed[arm]]
                if not np.allclose(theirs, ours, atol=1e-6):
                    raise SystemExit(f"{arm} {task}: centred {ours} is not ablate's {theirs}")
    keys = (*TRACKS, "sum")
    for arm in arms:
        runs = per_seed[arm]
        for key in keys:
            for way in WAYS:
                result[f"{arm} {key} {way}"] = pm([r[way][key] for r in runs])
            result[f"{arm} {key} causal - centred"] = pm(
                [r["causal"][key] - r["centred"][key] for r in runs]
            )
    for arm in arms:  # a head trained causal against the same head trained as the paper's
        if f"{arm}+causal" not in arms:
            continue
        for key in keys:
            pairs = zip(per_seed[f"{arm}+causal"], per_seed[arm], strict=True)
            result[f"{arm} {key} causal: trained causal - not"] = pm(
                [a["causal"][key] - b["causal"][key] for a, b in pairs]
            )
    result["per seed"] = {arm: per_seed[arm] for arm in arms}
    print("done", file=sys.stderr)
    emit(result, args.json, width=44)


if __name__ == "__main__":
    main()
