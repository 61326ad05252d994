"""Frame encoders on this CPU: frames a second of the backbone alone, as ratios to RegNetY-1.6GF.

    python benchmarks/backbones.py [--json] [--batch 32] [--smoke]

Every backbone has random weights (``--backbone-weights none``, seed 0) and runs as abaw-expr
runs it on a CPU: ``BackboneRunner``'s eager engine (channels-last), 112x112 ImageNet-normalised
crops in, a timm model resizing them to its own input size inside its forward. Figures on a
shared machine move from run to run, so the ratio to RegNetY measured in the same run is the
figure to read. ``--smoke`` also makes a random efficientnet_b0 as the demo makes its RegNetY
(seeded, its feature scale calibrated on training faces), caches a small synthetic sample's
features with it and trains the demo's three-task head on them over three seeds: a check of
the whole path that says nothing about Aff-Wild2.
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


def prepare_smoke(root: Path, name: str) -> None:
    """A random ``name`` as the demo makes its RegNetY (seeded, its feature scale calibrated on
    training faces, saved to ``root/backbone.safetensors``) and a small sample's features."""
    from safetensors.torch import save_file

    from abaw_expr.model.backbone import calibrate_feature_scale
    from abaw_expr.model.backbones import make_backbone
    from abaw_expr.synthetic.demo import calibration_faces
    from abaw_expr.synthetic.sample import write_sample
    from abaw_expr.training.extraction import extract

    write_sample(root / "s", train_videos=12, val_videos=4, frames=200, seed=3, workers=0)
    images = root / "s" / "cropped_aligned"
    backbone = make_backbone(name, "none", frozen_stages=5, seed=0)
    faces = calibration_faces(images, root / "s" / "annotations" / "Train_Set")
    calibrate_feature_scale(backbone, faces)
    weights = root / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    extract(images, root / "s" / "tracks", root / "f", str(weights), num_workers=1,
            engine="eager", backbone=name)  # fmt: skip


def smoke(seeds: int = 3, name: str = "timm:efficientnet_b0", root: Path | None = None) -> dict:
    """The demo's head recipe (three tasks, 8 epochs) on the features of a random ``name``,
    over ``seeds`` seeds; ``root``: the folder of an earlier run, its features reused."""
    from abaw_expr.synthetic.demo import head_stage_config
    from abaw_expr.training.ablation import ablate, pm

    if root is None:
        root = Path(tempfile.mkdtemp(prefix="abaw-backbones-"))
        prepare_smoke(root, name)
    config = head_stage_config("combine", root / "backbone.safetensors", 0, 8)
    config.model.backbone = name
    tracks = root / "s" / "tracks"
    table = ablate(config, tracks, root / "runs", ["combine"], seeds, features_dir=root / "f")
    row = table["arms"]["combine"]["tracks"]
    return {
        "smoke sample": "12 train / 4 validation videos of 200 frames",
        **{f"smoke {task}": pm(row[task]["score_stats"]) for task in ("expr", "va", "au")},
    }


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
