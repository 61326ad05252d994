"""Loading checkpoints safely: tensors and plain data only, never arbitrary pickled objects."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from abaw_expr.config import Config, config_from_dict
from abaw_expr.errors import InputError, require_file
from abaw_expr.inference.provenance import read_provenance
from abaw_expr.model.build import build_model
from abaw_expr.model.temporal import ExpressionModel


def read_checkpoint(path: Path | str) -> dict:
    """``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused, not run."""
    path = require_file(path, "a checkpoint file", missing="no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsafe content"
        raise InputError(
            f"refused: the checkpoint holds objects that need arbitrary unpickling ({first})", path
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise InputError(
            f"not a readable checkpoint ({str(err).splitlines()[0] if str(err) else type(err).__name__})",
            path,
        ) from None
    if (
        not isinstance(checkpoint, dict)
        or "state_dict" not in checkpoint
        or "hyper_parameters" not in checkpoint
    ):
        raise InputError("not an abaw-expr checkpoint (no state_dict / hyper_parameters)", path)
    return checkpoint


def load_model(path: Path | str) -> tuple[ExpressionModel, Config]:
    """The trained model (eval mode, on CPU) and the config it was trained with.

    The backbone is built empty (``backbone_weights`` is not re-downloaded): the checkpoint
    holds its trained weights. ``model.provenance`` is where the model comes from
    (:func:`~abaw_expr.inference.provenance.read_provenance`).
    """
    checkpoint = read_checkpoint(path)
    provenance = read_provenance(checkpoint)
    hparams = checkpoint["hyper_parameters"]
    config = config_from_dict(hparams["config"])
    config.model.backbone_weights = "none"
    model = build_model(config, with_backbone=hparams.get("with_backbone", True))
    state = {
        k.removeprefix("model."): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith("model.")
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [
        k for k in missing if not k.endswith(("feature_mean", "feature_std"))
    ]  # optional: identity
    if missing or unexpected:
        raise InputError(
            f"checkpoint does not fit the model (missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})",
            path,
        )
    model.provenance = provenance
    return model.eval(), config


def save_model_checkpoint(
    model: ExpressionModel, config: Config, path: Path | str, provenance: dict | None = None
) -> None:
    """A checkpoint that :func:`load_model` reads, without a training run (benchmarks, tests).

    Holds what Lightning's checkpoints hold for the model: its weights under ``model.`` and the
    config as hyper-parameters; and ``provenance``, where given (else it reads as unknown).
    """
    from abaw_expr.writers import atomic_write

    checkpoint = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {
            "config": config.to_dict(),
            "with_backbone": model.backbone is not None,
        },
    }
    if provenance is not None:
        checkpoint["provenance"] = provenance
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
