"""The ABAW3 expression model: RegNetY-1.6GF frame features + attention / Transformer head."""

from abaw_expr.model.backbone import (
    FEATURE_DIM,
    IMAGENET_WEIGHTS,
    STAGE_NAMES,
    RegNetFeatures,
    build_backbone,
)
from abaw_expr.model.temporal import (
    VARIANTS,
    EncoderLayer,
    ExpressionModel,
    SelfAttention,
    TemporalHead,
    count_parameters,
)

__all__ = [
    "FEATURE_DIM",
    "IMAGENET_WEIGHTS",
    "STAGE_NAMES",
    "VARIANTS",
    "EncoderLayer",
    "ExpressionModel",
    "RegNetFeatures",
    "SelfAttention",
    "TemporalHead",
    "build_backbone",
    "count_parameters",
]
