"""The multi-task challenge on the sample: does one model of the three heads learn each term of
P_MTL, trained on the sparse rows of the sample's MTL files?

    python benchmarks/mtl.py --run DEMO_OUT [--seeds 3] [--epochs 8] [--json]

``DEMO_OUT`` is a finished ``abaw-expr demo`` folder: its frozen backbone and its sample (whose
``mtl/`` files are written here if the demo predates them; they depend only on the sample's
seed and sizes). The features of the listed frames are extracted with that backbone, then the
demo's head recipe trains expr + va + au on ``mtl/`` over the seeds. Each term of P_MTL on the
validation file's rows is printed as mean ± std beside what a constant predictor gets on the
same rows: CCC 0 for any constant valence and arousal; for expressions the best constant
class, F1 2p / (1 + p) for a class on a share p of the rows, over 8; for AUs every AU on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import SPLITS
from abaw_expr.data.mtl import find_mtl, read_mtl
from abaw_expr.evaluation.metrics import au_scores
from abaw_expr.synthetic.demo import head_stage_config
from abaw_expr.synthetic.sample_plan import plan_sample
from abaw_expr.synthetic.sample_tasks import write_mtl
from abaw_expr.tasks import AU_NAMES, NUM_CLASSES
from abaw_expr.training.ablation import ablate, pm
from abaw_expr.training.extraction import extract
from report import emit, environment  # benchmarks/report.py, beside this script


def ensure_mtl(sample: Path) -> Path:
    if find_mtl(sample / "mtl") is None:
        info = json.loads((sample / "sample.json").read_text())
        counts = [len(info["splits"][s]["videos"]) for s in SPLITS]
        plans, _ = plan_sample(counts[0], counts[1], info["frames_per_video"], info["seed"])
        write_mtl(sample, plans)
    return sample / "mtl"


def constants(validation: Path) -> dict:
    rows = read_mtl(validation).values()
    expr = np.concatenate([r.expr for r in rows])
    au = np.concatenate([r.au for r in rows])
    shares = np.bincount(expr[expr >= 0], minlength=NUM_CLASSES) / max((expr >= 0).sum(), 1)
    best = shares.max()
    return {
        "va": 0.0,
        "expr": 2 * best / (1 + best) / NUM_CLASSES,
        "au": au_scores(au, np.ones_like(au), AU_NAMES)["score"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished demo folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backbone = args.run / "backbone.safetensors"
    mtl = ensure_mtl(args.run / "sample")
    result = {**environment(), "seeds": args.seeds, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        images = args.run / "sample" / "cropped_aligned"
        extract(images, mtl, Path(tmp) / "features", str(backbone), num_workers=1, engine="eager")
        result["extract seconds"] = round(time.time() - started)
        config = head_stage_config("combine", backbone, 0, args.epochs)
        started = time.time()
        table = ablate(
            config,
            mtl,
            Path(tmp) / "runs",
            ["combine"],
            args.seeds,
            features_dir=Path(tmp) / "features",
        )
        result["train seconds"] = round(time.time() - started)
    row = table["arms"]["combine"]["tracks"]
    constant = constants(mtl / "validation_set_annotations.txt")
    for task in ("va", "expr", "au"):
        result[f"{task}: model"] = pm(row[task]["score_stats"])
        result[f"{task}: constant"] = f"{100 * constant[task]:.1f}"
    scores = np.sum([row[t]["score"] for t in ("va", "expr", "au")], axis=0)
    result["P_MTL: model"] = (
        f"{scores.mean():.4f} ± {scores.std(ddof=1) if len(scores) > 1 else 0:.4f}"
    )
    result["P_MTL: constant"] = f"{sum(constant.values()):.4f}"
    print("done", file=sys.stderr)
    emit(result, args.json)


if __name__ == "__main__":
    main()
