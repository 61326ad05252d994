"""Frame encoders on this CPU: frames a second of the backbone alone, as ratios to RegNetY-1.6GF.

    python benchmarks/backbones.py [--json] [--batch 32] [--smoke]

Every backbone has random weights (``--backbone-weights none``, seed 0) and runs as abaw-expr
runs it on a CPU: ``BackboneRunner``'s eager engine (channels-last), 112x112 ImageNet-normalised
crops in, a timm model resizing them to its own input size inside its forward. Figures on a
shared machine move from run to run, so the ratio to RegNetY measured in the same run is the
figure to read. ``--smoke`` also extracts a small synthetic sample with a random
efficientnet_b0 and trains the head on it over three seeds: a check of the whole path that
says nothing about Aff-Wild2.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from run import best_rate  # benchmarks/run.py, beside this script

BACKBONES = (
    "regnet_y_1_6gf",
    "timm:efficientnet_b0",
    "timm:efficientnet_b2",
    "timm:vit_small_patch16_224",
    "timm:vit_base_patch16_224",
)


def speeds(batch: int) -> dict:
    from abaw_expr.inference.engine import BackboneRunner
    from abaw_expr.model.backbones import make_backbone

    images = torch.randn(batch, 3, 112, 112)
    table = {}
    for name in BACKBONES:
        backbone = make_backbone(name, "none", frozen_stages=5, seed=0)
        runner = BackboneRunner(backbone, "cpu", "eager", batch)
        fps = best_rate(lambda runner=runner: runner(images), batch, repeats=3)
        table[name] = {
            "feature_dim": backbone.feature_dim,
            "input": list(getattr(backbone, "input_size", (112, 112))),
            "fps": round(fps, 1),
        }
        print(f"{name:28s} {table[name]['input']} {fps:7.1f} frames/s", flush=True)
    base = table[BACKBONES[0]]["fps"]
    for row in table.values():
        row["ratio"] = round(row["fps"] / base, 3)
    return table


def smoke(seeds=(0, 1, 2)) -> dict:
    """A random efficientnet_b0 on a small synthetic sample: extract, head-only train, F1."""
    from abaw_expr.config import Config
    from abaw_expr.synthetic.sample import write_sample
    from abaw_expr.training.extraction import extract
    from abaw_expr.training.loop import train

    root = Path(tempfile.mkdtemp(prefix="abaw-backbones-"))
    write_sample(root / "s", train_videos=6, val_videos=3, frames=200, seed=3, workers=0)
    extract(root / "s" / "cropped_aligned", root / "s" / "annotations", root / "f", "none",
            num_workers=1, engine="eager", backbone="timm:efficientnet_b0", seed=0)  # fmt: skip
    scores = {}
    for seed in seeds:
        config = Config()
        config.model.backbone, config.model.backbone_weights = "timm:efficientnet_b0", "none"
        config.trainer.seed, config.trainer.epochs = seed, 15
        config.data.num_workers = 0
        run = train(config, root / "s" / "annotations", root / f"run{seed}",
                    features_dir=root / "f", enable_progress_bar=False)  # fmt: skip
        scores[seed] = round(run["best_macro_f1"], 4)
        print(f"seed {seed}: best validation macro F1 {scores[seed]}", flush=True)
    return {"sample": "6 train / 3 validation videos of 200 frames", "macro_f1": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"threads": torch.get_num_threads(), "speed": speeds(args.batch)}
    if args.smoke:
        result["smoke"] = smoke()
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
