"""Building the model from its config, without the training machinery.

Kept apart from :mod:`abaw_expr.training.module` (the LightningModule) so that the inference paths (``evaluate``,
``predict``, ``serve``, ``export``) never import Lightning: it costs seconds of start-up and
inference does not use it.
"""

from __future__ import annotations

from abaw_expr.config import Config
from abaw_expr.model.backbones import feature_width, make_backbone
from abaw_expr.model.temporal import ExpressionModel, TemporalHead


def build_model(config: Config, with_backbone: bool = True) -> ExpressionModel:
    m = config.model
    backbone = (
        make_backbone(m.backbone, m.backbone_weights, m.frozen_stages, seed=backbone_seed(config))
        if with_backbone
        else None
    )
    head = TemporalHead(
        m.variant,
        feature_dim=backbone.feature_dim if backbone is not None else feature_width(m.backbone),
        heads=m.heads,
        head_dim=m.head_dim,
        ff_dim=m.ff_dim,
        dropout=m.dropout,
        positional=m.positional,
        tasks=m.tasks,
        causal=m.causal,
    )
    return ExpressionModel(backbone, head)


def backbone_seed(config: Config) -> int:
    """The seed of a random (``none``) backbone: ``model.backbone_seed``, else ``trainer.seed``."""
    return config.model.backbone_seed if config.model.backbone_seed >= 0 else config.trainer.seed
