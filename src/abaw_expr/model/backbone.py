"""RegNetY-1.6GF frame encoder: an image batch in, one 888-d feature per image out.

The backbone is torchvision's ``regnet_y_1_6gf`` without its ImageNet classifier (``fc``):
stem -> trunk_output (block1..block4) -> global average pool -> flatten, as in the authors'
code (``create_feature_extractor(..., return_nodes={"flatten": ...})``).

Weights (``build_backbone(weights=...)``):

- ``"imagenet"`` / ``"imagenet_v2"``: torchvision ``RegNet_Y_1_6GF_Weights.IMAGENET1K_V2``
  (80.9 % top-1, torchvision's ``DEFAULT``);
- ``"imagenet_v1"``: ``IMAGENET1K_V1`` (77.9 % top-1). This is what ``pretrained=True`` meant
  in the torchvision the authors used in 2022;
- ``"none"``: random initialisation;
- a path to a local ``.pth``/``.pt`` (loaded with ``weights_only=True``) or ``.safetensors``
  file holding either a torchvision regnet_y_1_6gf state dict (its ``fc.*`` keys are dropped)
  or a :class:`RegNetFeatures` state dict.

An optional per-channel output standardisation (``feature_mean``, ``feature_std`` buffers,
identity by default, absent keys in a weights file mean identity) lets a backbone whose
features are badly scaled, such as a randomly initialised one, hand the head zero-mean,
unit-variance features; :func:`calibrate_feature_scale` sets it from data.

Freezing counts stages from the input over ``(stem, block1, block2, block3, block4)``; the
authors froze stem and block1 (``frozen_stages=2``). Frozen parameters get
``requires_grad=False`` and frozen stages stay in eval mode, so their BatchNorm running
statistics never change.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from abaw_expr.data.torchvision_import import import_torchvision

import_torchvision()  # first, so that torchvision comes in without torch._dynamo

from torchvision.models import RegNet_Y_1_6GF_Weights, regnet_y_1_6gf  # noqa: E402

from abaw_expr.errors import InputError  # noqa: E402

FEATURE_DIM = 888
STAGE_NAMES: tuple[str, ...] = ("stem", "block1", "block2", "block3", "block4")
DEFAULT_FROZEN_STAGES = 2

IMAGENET_WEIGHTS: dict[str, RegNet_Y_1_6GF_Weights] = {
    "imagenet": RegNet_Y_1_6GF_Weights.IMAGENET1K_V2,
    "imagenet_v2": RegNet_Y_1_6GF_Weights.IMAGENET1K_V2,
    "imagenet_v1": RegNet_Y_1_6GF_Weights.IMAGENET1K_V1,
}


class RegNetFeatures(nn.Module):
    """RegNetY-1.6GF up to the pooled, flattened feature: (N, 3, H, W) -> (N, 888).

    Input is an ImageNet-normalised float batch. The state-dict keys are torchvision's
    (``stem.*``, ``trunk_output.*``) so a torchvision checkpoint minus ``fc.*`` loads as is.
    """

    feature_dim: int = FEATURE_DIM

    def __init__(self, frozen_stages: int = DEFAULT_FROZEN_STAGES):
        super().__init__()
        if not 0 <= frozen_stages <= len(STAGE_NAMES):
            raise InputError(
                f"frozen_stages must be between 0 and {len(STAGE_NAMES)} "
                f"(counted over {', '.join(STAGE_NAMES)}), got {frozen_stages}"
            )
        net = regnet_y_1_6gf(weights=None)
        self.stem = net.stem
        self.trunk_output = net.trunk_output
        self.avgpool = net.avgpool
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))
        self.frozen_stages = frozen_stages
        for stage in self.frozen_modules():
            stage.requires_grad_(False)
        self.train(self.training)

    def stages(self) -> list[nn.Module]:
        """The five freezable stages, from the input: stem, block1, block2, block3, block4."""
        return [self.stem, *(getattr(self.trunk_output, name) for name in STAGE_NAMES[1:])]

    def frozen_modules(self) -> list[nn.Module]:
        """The stages that are frozen (the first ``frozen_stages`` of :meth:`stages`)."""
        return self.stages()[: self.frozen_stages]

    def train(self, mode: bool = True) -> RegNetFeatures:
        """Set train/eval mode, keeping frozen stages in eval mode (their BN statistics fixed)."""
        super().train(mode)
        for stage in self.frozen_modules():
            stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images (N, 3, H, W) into features (N, 888)."""
        x = self.trunk_output(self.stem(x))
        return (torch.flatten(self.avgpool(x), 1) - self.feature_mean) / self.feature_std


def build_backbone(
    weights: str = "imagenet", frozen_stages: int = DEFAULT_FROZEN_STAGES
) -> RegNetFeatures:
    """Build the RegNetY-1.6GF feature extractor with the given weights and frozen stages.

    ``weights`` is ``"imagenet"`` (= ``"imagenet_v2"``), ``"imagenet_v1"``, ``"none"`` or a
    path to a local weights file; see the module docstring. Raises :class:`InputError` when
    the weights cannot be obtained or do not fit the model.
    """
    model = RegNetFeatures(frozen_stages=frozen_stages)
    key = weights.strip().lower()
    if key == "none":
        return model
    if key in IMAGENET_WEIGHTS:
        state = _download_imagenet(IMAGENET_WEIGHTS[key])
        _load_into(model, state, source=f"torchvision {IMAGENET_WEIGHTS[key]}")
        return model
    path = weights_file(weights, "'imagenet', 'imagenet_v1', 'none'")
    _load_into(model, _read_state_dict(path), source=str(path))
    return model


def weights_file(weights: str, words: str) -> Path:
    """The local weights file ``weights`` names; an InputError saying what else it could be
    (``words``) when there is no such file."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(
            f"backbone weights must be {words} or an existing .pth/.pt/.safetensors file; "
            "no such file",
            path=weights,
        )
    return path


@torch.inference_mode()
def calibrate_feature_scale(
    backbone: RegNetFeatures, images: torch.Tensor, batch_size: int = 128
) -> None:
    """Set the output standardisation so that ``images`` give zero-mean, unit-variance features."""
    backbone.feature_mean.zero_()
    backbone.feature_std.fill_(1.0)
    was_training = backbone.training
    backbone.eval()
    features = torch.cat([backbone(chunk) for chunk in images.split(batch_size)])
    backbone.feature_mean.copy_(features.mean(0))
    std = features.std(0)
    backbone.feature_std.copy_(
        torch.where(std > 1e-6, std, torch.ones_like(std))
    )  # dead channels stay 0
    backbone.train(was_training)


def _download_imagenet(weights: RegNet_Y_1_6GF_Weights) -> dict[str, torch.Tensor]:
    filename = os.path.basename(urlparse(weights.url).path)
    cache_path = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as exc:  # URLError, HTTPError, ConnectionError, socket timeouts, disk errors
        raise InputError(
            f"cannot download the ImageNet weights {weights} ({exc}); put {weights.url} at "
            f"{cache_path} or pass a local weights file instead"
        ) from exc


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling/format errors come in many types
        raise InputError(f"cannot read backbone weights ({exc})", path=path) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError("not a state dict (a mapping of names to tensors)", path=path)
    return state


def _load_into(model: RegNetFeatures, state: dict[str, torch.Tensor], source: str) -> None:
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise InputError(
            f"backbone weights do not fit regnet_y_1_6gf: {exc}".replace("\n", " "), path=source
        ) from exc
    problems = []
    optional = {"feature_mean", "feature_std"}  # torchvision files have none: identity
    missing = [k for k in result.missing_keys if k not in optional]
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if result.unexpected_keys:
        problems.append(
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[0]})"
        )
    if problems:
        raise InputError(
            "backbone weights are not a regnet_y_1_6gf state dict: " + ", ".join(problems),
            path=source,
        )
