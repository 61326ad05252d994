"""Which frame encoder (``model.backbone``) and with which weights; what identifies them.

``regnet_y_1_6gf`` is the paper's (:mod:`.backbone`, the default, unchanged); ``timm:<name>``
is any timm architecture (:mod:`.timm_backbone`). Weights (``--backbone-weights``):

- ``none``: random, drawn from torch's generator seeded with ``seed`` (the run's seed), apart
  from the global generator, so two runs with one seed build the same backbone and a resumed
  extraction goes on with the features it started with. ``seed=None`` draws from the global
  generator, as before;
- ``imagenet`` / ``pretrained``: the library's own download (torchvision's
  ``IMAGENET1K_V2`` for RegNetY, ``imagenet_v1`` its V1; timm's default pretrained tag);
- a local state-dict file, safetensors or torch (read with ``weights_only=True``).

:func:`backbone_identity` names a backbone by its architecture and a hash of its weights as
loaded (every state-dict tensor's bytes), never by the file's name: the feature cache records
it, and a cache made by another backbone is refused.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from abaw_expr.errors import InputError
from abaw_expr.model.backbone import (
    FEATURE_DIM,
    IMAGENET_WEIGHTS,
    _read_state_dict,
    build_backbone,
    weights_file,
)
from abaw_expr.model.timm_backbone import (
    TIMM_PREFIX,
    TimmFeatures,
    check_timm_name,
    load_timm_state,
)

DEFAULT_BACKBONE = "regnet_y_1_6gf"
PRETRAINED_WORDS = ("imagenet", "pretrained")


def check_backbone(name: str) -> str:
    """``name`` as the model records it; neither the paper's nor ``timm:<name>`` is an error."""
    name = name.strip()
    if name.lower() == DEFAULT_BACKBONE:
        return DEFAULT_BACKBONE
    if name.lower().startswith(TIMM_PREFIX):
        return TIMM_PREFIX + check_timm_name(name)
    raise InputError(
        f"model.backbone: expected {DEFAULT_BACKBONE!r} or 'timm:<architecture>' "
        f"(timm:efficientnet_b0, timm:vit_base_patch16_224, ...), got {name!r}"
    )


def make_backbone(
    name: str = DEFAULT_BACKBONE,
    weights: str = "imagenet",
    frozen_stages: int = 2,
    seed: int | None = None,
) -> nn.Module:
    """The backbone ``name`` with ``weights`` (see the module docstring). Bad input (an unknown
    name, a missing file, weights that do not fit) is an InputError."""
    name = check_backbone(name)
    key = weights.strip().lower()
    if key == "none" and seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return make_backbone(name, weights, frozen_stages)
    if name == DEFAULT_BACKBONE:
        return build_backbone("imagenet" if key == "pretrained" else weights, frozen_stages)
    if key in PRETRAINED_WORDS:
        return TimmFeatures(name, frozen_stages, pretrained=True)
    model = TimmFeatures(name, frozen_stages)
    if key == "none":
        return model
    if key in IMAGENET_WEIGHTS:
        raise InputError(f"--backbone-weights {weights}: only for {DEFAULT_BACKBONE}; use imagenet")
    path = weights_file(weights, "'imagenet', 'pretrained', 'none'")
    load_timm_state(model, _read_state_dict(path), source=str(path))
    return model


def backbone_width(backbone: nn.Module) -> int:
    """The width of ``backbone``'s feature (RegNetY's 888 for a module that does not say)."""
    return int(getattr(backbone, "feature_dim", FEATURE_DIM))


def weights_digest(backbone: nn.Module) -> str:
    """SHA-256 (16 hex digits) of the backbone's state dict: every name, dtype, shape and
    tensor's bytes, in order."""
    digest = hashlib.sha256()
    for key, tensor in backbone.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def backbone_identity(name: str, backbone: nn.Module) -> str:
    """``<backbone> sha256:<weights digest>``: what a feature cache records."""
    return f"{check_backbone(name)} sha256:{weights_digest(backbone)}"


def feature_width(name: str) -> int:
    """The width of ``name``'s feature, without weights (nor a draw from the global generator)."""
    name = check_backbone(name)
    if name == DEFAULT_BACKBONE:
        return FEATURE_DIM
    with torch.random.fork_rng(devices=[]):
        return TimmFeatures(name, frozen_stages=0).feature_dim
