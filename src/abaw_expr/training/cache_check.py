"""Head-only training reads a feature cache: its backbone must be the run's, weights included.

The checkpoint embeds the backbone the config describes (``model.backbone``,
``model.backbone_weights``), and prediction runs it on new faces: features that another
backbone made would pair a head with an encoder it never saw. A cache records its backbone and
a hash of the weights as they were loaded (:func:`abaw_expr.model.backbones.backbone_identity`);
the run's backbone is built and hashed the same way and must match. A random (``none``)
backbone is drawn again with the seed the cache records, unless ``model.backbone_seed`` names
one.
"""

from __future__ import annotations

from pathlib import Path

from abaw_expr.config import Config
from abaw_expr.data.feature_cache import FeatureCache, backbone_id
from abaw_expr.errors import InputError


def check_features_match(features_dir: Path, config: Config) -> None:
    """Refuse a cache made by another backbone or other weights than ``config``'s (one line);
    for ``none``, take the cache's seed into ``config.model.backbone_seed``."""
    from abaw_expr.model.backbones import backbone_identity, make_backbone
    from abaw_expr.model.build import backbone_seed

    cache = FeatureCache(features_dir / "Train_Set")
    m = config.model
    random = m.backbone_weights.strip().lower() == "none"
    if " sha256:" not in cache.backbone:  # a cache of before issue 36: named by its weights
        _check_legacy(features_dir, cache.backbone, m.backbone, m.backbone_weights)
        return
    if random and m.backbone_seed < 0 and cache.backbone_seed >= 0:
        m.backbone_seed = cache.backbone_seed
    backbone = make_backbone(m.backbone, m.backbone_weights, 5, seed=backbone_seed(config))
    identity = backbone_identity(m.backbone, backbone)
    if identity != cache.backbone:
        raise InputError(
            f"features were extracted with {cache.backbone!r}, but this run's backbone is "
            f"{identity!r} (--backbone {m.backbone}, --backbone-weights {m.backbone_weights}"
            f"{f', seed {backbone_seed(config)}' if random else ''}); pass the same --backbone "
            "and --backbone-weights as to 'abaw-expr extract'",
            features_dir,
        )


def _check_legacy(features_dir: Path, cached: str, backbone: str, weights: str) -> None:
    if backbone.strip().lower() != "regnet_y_1_6gf":
        raise InputError(
            f"features were extracted with RegNetY-1.6GF ({cached!r}), not {backbone}", features_dir
        )
    if weights.strip().lower() == "none":
        raise InputError(
            "this cache predates reproducible random backbones, and for it 'none' draws new "
            "random ones: extract again, or pass the backbone's file as --backbone-weights"
        )
    if cached != backbone_id(weights):
        raise InputError(
            f"features were extracted with backbone {cached!r}, but model.backbone_weights is "
            f"{weights!r}; pass the same --backbone-weights as to 'abaw-expr extract'",
            features_dir,
        )
