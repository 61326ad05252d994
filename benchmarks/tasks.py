"""Each ABAW track alone against all three together, and against a constant, on one cache.

    python benchmarks/tasks.py --run DEMO_OUT [--seeds 3] [--epochs 8] [--variant combine] [--json]

``DEMO_OUT`` is a finished ``abaw-expr demo`` folder: its feature cache, backbone and sample.
For the variant chosen, trains the demo's recipe on ``expr``, ``va`` and ``au`` alone and on
all three at once, each over the seeds, and prints each track's validation score as mean ±
std beside what a constant predictor gets on the same frames: CCC 0 for any constant valence
and arousal (no covariance), and for AUs the best constant, every AU on (F1 = 2p / (1 + p)
for an AU present on a share p of the frames).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from abaw_expr.data.feature_cache import open_split_index
from abaw_expr.evaluation.metrics import au_scores
from abaw_expr.synthetic.demo import head_stage_config
from abaw_expr.tasks import AU_NAMES
from abaw_expr.training.ablation import ablate, pm
from report import emit, environment  # benchmarks/report.py, beside this script


def constant_au_f1(features: Path) -> float:
    index = open_split_index(features / "Validation_Set")
    truth = np.concatenate([v.au for v in index])
    return au_scores(truth, np.ones_like(truth), AU_NAMES)["score"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished demo folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--variant", default="combine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    features, backbone = args.run / "features", args.run / "backbone.safetensors"
    tracks_dir = args.run / "sample" / "tracks"
    result = {**environment(), "variant": args.variant, "seeds": args.seeds}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in (["expr"], ["va"], ["au"], ["expr", "va", "au"]):
            config = head_stage_config(args.variant, backbone, 0, args.epochs)
            config.model.tasks = arm
            started = time.time()
            table = ablate(
                config,
                tracks_dir,
                Path(tmp) / "+".join(arm),
                [args.variant],
                args.seeds,
                features_dir=features,
            )
            row = table["arms"][args.variant]
            name = "+".join(arm)
            if arm == ["expr"]:
                result[f"{name}: expr"] = pm(
                    {"mean": row["macro_f1_mean"], "std": row["macro_f1_std"]}
                )
            else:
                for track, entry in row["tracks"].items():
                    result[f"{name}: {track}"] = pm(entry["score_stats"])
            result[f"{name}: seconds"] = round(time.time() - started)
            print(f"{name} done", file=sys.stderr)
    result["constant: va"] = "0.0 (any constant)"
    result["constant: au (every AU on)"] = f"{100 * constant_au_f1(features):.1f}"
    emit(result, args.json)


if __name__ == "__main__":
    main()
