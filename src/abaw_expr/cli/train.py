"""Train: one run, an ablation of variants over seeds, and a model variant's size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from abaw_expr.cli.arguments import JSON_HELP, config_args, load_config
from abaw_expr.cli.command import Command, Group, print_result
from abaw_expr.config import VARIANTS
from abaw_expr.errors import InputError

EPOCHS_HELP = "training epochs (default: the config's trainer.epochs, 30)"
_TRAINING_INPUTS = (
    ("config", "file"),
    ("images", "folder"),
    ("features", "folder"),
    ("annotations", "file or folder"),
    ("backbone_weights", "weights"),
)


def _task_names(text: str) -> list[str]:
    from abaw_expr.tasks import TASKS

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise InputError(f"--tracks: expected some of {','.join(TASKS)}, got {text!r}")
    return names


def _config_with_tasks(args: argparse.Namespace):
    """The run's config, training ``--tracks`` or else every track the data hold (a resumed
    run keeps its config's)."""
    config = load_config(args)
    if args.tracks is not None:
        config.model.tasks = _task_names(args.tracks)
    elif not args.resume:
        from abaw_expr.training.loop import data_tasks

        config.model.tasks = data_tasks(args.annotations, args.features)
    return config


def _require_images_or_features(args: argparse.Namespace) -> None:
    if args.images is None and args.features is None:
        raise InputError(
            "give --images (cropped_aligned folder) or --features (a cache from 'abaw-expr extract')"
        )


def train_arguments(p: argparse.ArgumentParser) -> None:
    config_args(p)
    p.add_argument("--images", type=Path, help="the cropped_aligned folder (end-to-end training)")
    p.add_argument(
        "--features",
        type=Path,
        help="a feature cache from 'abaw-expr extract' (head-only training)",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="folder holding Train_Set/ and Validation_Set/, or ABAW's track folders, or the "
        "multi-task challenge's folder of split files",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        help="the model: combine (the paper's: features + attention + Transformer) or an "
        "ablation of it (default: the config's model.variant, combine)",
    )
    p.add_argument(
        "--tracks",
        help="ABAW tracks to train, some of expr,va,au (default: every track the data hold)",
    )
    p.add_argument("--epochs", type=int, help=EPOCHS_HELP)
    p.add_argument(
        "--causal",
        action="store_true",
        help="beyond the paper: each frame attends only to itself and earlier frames, for live "
        "prediction (model.causal; default: the paper's attention to the whole window)",
    )
    p.add_argument("--seed", type=int, help="the run's seed (default: trainer.seed, 42)")
    p.add_argument(
        "--auto-lr", action="store_true", help="run Lightning's learning-rate finder first"
    )
    p.add_argument("--devices", help="'auto', a count or a list like 0,1")
    p.add_argument(
        "--num-nodes", type=int, help="machines of a multi-machine (DDP) run (default 1)"
    )
    p.add_argument("--strategy", help="auto | ddp | ddp_spawn | fsdp ...")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.ckpt")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")


def run_train(args: argparse.Namespace) -> None:
    if args.resume and not (args.out / "last.ckpt").is_file():  # before PyTorch is imported
        raise InputError("nothing to resume: no last.ckpt in this run folder (--resume)", args.out)
    _require_images_or_features(args)
    from abaw_expr.training.loop import is_global_zero, train

    if args.resume and args.config is None and (args.out / "config.yaml").is_file():
        args.config = args.out / "config.yaml"  # continue with the settings the run started with
    config = _config_with_tasks(args)
    run = train(
        config,
        args.annotations,
        args.out,
        images_dir=args.images,
        features_dir=args.features,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    if "best_macro_f1" in run:
        print(f"best validation macro F1 {run['best_macro_f1']:.4f}: {run['best_checkpoint']}")
    else:
        tasks = " + ".join(run["tracks"])
        print(f"best validation score ({tasks}) {run['best_score']:.4f}: {run['best_checkpoint']}")
    if is_global_zero():
        from abaw_expr.report import write_run_report

        print(f"report: {write_run_report(args.out)}")


def ablate_arguments(p: argparse.ArgumentParser) -> None:
    config_args(p)
    p.add_argument("--images", type=Path, help="the cropped_aligned folder (end-to-end training)")
    p.add_argument("--features", type=Path, help="a feature cache (head-only training)")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="folder holding Train_Set/ and Validation_Set/, or ABAW's track folders, or the "
        "multi-task challenge's folder of split files",
    )
    p.add_argument("--out", type=Path, required=True, help="a new folder for the runs and table")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated; add +pos for the relative positions beyond the paper "
        "(combine+pos), +causal for attention to earlier frames only (combine+causal)",
    )
    p.add_argument(
        "--tracks",
        help="ABAW tracks to train, some of expr,va,au (default: every track the data hold)",
    )
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    p.add_argument("--seed", type=int, help="the first seed (default trainer.seed); then +1, ...")
    p.add_argument("--epochs", type=int, help=EPOCHS_HELP)
    p.add_argument("--resume", action="store_true", help="finish an interrupted ablation")
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_ablate(args: argparse.Namespace) -> None:
    from abaw_expr.training.ablation import ablate, format_table, parse_arms

    arms = parse_arms(args.variants)  # before anything is written
    if args.seeds < 1:
        raise InputError(f"--seeds: need at least 1 seed, got {args.seeds}")
    _require_images_or_features(args)
    if args.resume and args.config is None and (args.out / "config.yaml").is_file():
        args.config = args.out / "config.yaml"  # continue with the settings it started with
    table = ablate(
        _config_with_tasks(args),
        args.annotations,
        args.out,
        arms,
        args.seeds,
        images_dir=args.images,
        features_dir=args.features,
        resume=args.resume,
    )
    print_result(table, args.json, format_table(table) + f"table: {args.out / 'ablation.json'}")


def describe_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--variant", default="combine", choices=VARIANTS, help="the model (default combine)"
    )
    p.add_argument(
        "--backbone",
        default="regnet_y_1_6gf",
        help="regnet_y_1_6gf (the paper's) or timm:<architecture>, e.g. timm:efficientnet_b0",
    )
    p.add_argument(
        "--frames", type=int, default=64, help="frames per window of the input (default 64)"
    )
    p.add_argument("--batch", type=int, default=2, help="windows in the input (default 2)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_describe_model(args: argparse.Namespace) -> None:
    from abaw_expr.model.describe import describe_model

    result = describe_model(
        args.variant, frames=args.frames, batch=args.batch, backbone=args.backbone
    )
    print_result(result, args.json, json.dumps(result, indent=2))


def describe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint file (.ckpt)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_describe(args: argparse.Namespace) -> None:
    from abaw_expr.inference.checkpoint import read_checkpoint
    from abaw_expr.inference.provenance import format_provenance, model_warning, read_provenance

    record = read_provenance(read_checkpoint(args.checkpoint))
    result = {**record, "model_warning": model_warning(record)}
    print_result(result, args.json, f"{args.checkpoint}\n{format_provenance(record)}")


GROUP = Group(
    "Train",
    (
        Command(
            "train",
            "train the model (the paper's recipe by default)",
            train_arguments,
            run_train,
            inputs=_TRAINING_INPUTS,
        ),
        Command(
            "ablate",
            "train variants over N seeds on the same data; mean and std of macro and per-class F1",
            ablate_arguments,
            run_ablate,
            inputs=_TRAINING_INPUTS,
        ),
        Command(
            "describe",
            "where a checkpoint's model comes from: data, backbone, tasks, code, validation scores",
            describe_arguments,
            run_describe,
            inputs=(("checkpoint", "file"),),
        ),
        Command(
            "describe-model",
            "parameter counts and output shape of a model variant",
            describe_model_arguments,
            run_describe_model,
        ),
    ),
)
