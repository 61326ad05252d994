"""Building the model from its config, without the training machinery.

Kept apart from :mod:`abaw_expr.training.module` (the LightningModule) so that the inference paths (``evaluate``,
``predict``, ``serve``, ``export``) never import Lightning: it costs seconds of start-up and
inference does not use it.
"""

from __future__ import annotations

from abaw_expr.config import Config
from abaw_expr.model.backbone import build_backbone
from abaw_expr.model.temporal import ExpressionModel, TemporalHead


def build_model(config: Config, with_backbone: bool = True) -> ExpressionModel:
    m = config.model
    backbone = build_backbone(m.backbone_weights, m.frozen_stages) if with_backbone else None
    head = TemporalHead(
        m.variant,
        heads=m.heads,
        head_dim=m.head_dim,
        ff_dim=m.ff_dim,
        dropout=m.dropout,
        positional=m.positional,
        tasks=m.tasks,
    )
    return ExpressionModel(backbone, head)
