"""``abaw-expr describe-model``: parameter counts and the output shape of one forward pass."""

from __future__ import annotations

import torch

from abaw_expr.config import Config
from abaw_expr.model.build import build_model
from abaw_expr.model.temporal import count_parameters


def describe_model(
    variant: str = "combine",
    frames: int = 64,
    batch: int = 2,
    image_size: int = 112,
    backbone: str = "regnet_y_1_6gf",
) -> dict:
    """Counts per part and the output shape of a random (batch, frames, 3, size, size) input."""
    config = Config()
    config.model.variant = variant
    config.model.backbone = backbone
    config.model.backbone_weights = "none"
    model = build_model(config).eval()
    with torch.inference_mode():
        out = model(torch.randn(batch, frames, 3, image_size, image_size))
    counts = count_parameters(model)
    return {
        "variant": variant,
        "backbone": config.model.backbone,
        "parameters": {k: counts[k] for k in ("backbone", "attention", "encoder", "head", "total")},
        "feature_dim": model.head.feature_dim,
        "output": list(out.shape),
    }
