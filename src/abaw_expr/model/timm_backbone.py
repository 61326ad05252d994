"""Any timm architecture as the frame encoder: an image batch in, one pooled feature per image out.

``timm.create_model(name, num_classes=0)`` gives the pooled feature (``num_features`` wide,
or ``head_hidden_size`` where a layer follows the pooling: 1280 for efficientnet_b0, 768 for
vit_base_patch16_224, 1024 for mobilenetv3_small_050). The rest of abaw-expr hands every
backbone 112x112 crops, normalised with ImageNet's mean and deviation
(:mod:`abaw_expr.data.normalize`). :class:`TimmFeatures` turns them, on the device and inside
its ``forward`` (so inside a compiled or exported graph too), into what the model was
pretrained on: timm's data config (``resolve_data_config({}, model=...)``) gives the input
size, the interpolation and the normalisation. The loader workers are unchanged.

Freezing keeps RegNetY's scale of 0 to 5 (``model.frozen_stages``: 0 nothing, 5 everything,
2 the default). In between, a timm backbone freezes the first ``round(k * n / 5)`` of its
``n`` coarse parameter groups (``group_matcher(coarse=True)``: the stem first, then the
stages or blocks), a choice of abaw-expr: timm has no common notion of stages. Frozen
modules stay in eval mode, so their BatchNorm statistics never change.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from abaw_expr.data.normalize import IMAGENET_MEAN, IMAGENET_STD
from abaw_expr.errors import InputError

TIMM_PREFIX = "timm:"
FREEZE_SCALE = 5  # frozen_stages counts 0..5 for every backbone, as RegNetY's five stages


def _timm():
    try:
        import timm
    except ImportError:
        raise InputError("a timm backbone needs timm (pip install 'timm>=1.0')") from None
    return timm


def check_timm_name(name: str) -> str:
    """The architecture of ``timm:<name>``; an unknown one is an InputError."""
    arch = name[len(TIMM_PREFIX) :].strip()
    timm = _timm()
    if not arch or not timm.is_model(arch):
        raise InputError(
            f"model.backbone: timm has no architecture {arch!r} "
            "(python -c \"import timm; print(timm.list_models('*b0*'))\" lists names)"
        )
    return arch


class TimmFeatures(nn.Module):
    """A timm model up to its pooled feature: (N, 3, H, W) ImageNet-normalised -> (N, F)."""

    def __init__(self, name: str, frozen_stages: int = 2, pretrained: bool = False):
        super().__init__()
        if not 0 <= frozen_stages <= FREEZE_SCALE:
            raise InputError(
                f"frozen_stages must be between 0 and {FREEZE_SCALE} (0 nothing, "
                f"{FREEZE_SCALE} everything), got {frozen_stages}"
            )
        timm = _timm()
        self.name = TIMM_PREFIX + check_timm_name(name)
        try:
            self.net = timm.create_model(self.name[len(TIMM_PREFIX) :], pretrained, num_classes=0)
        except (OSError, RuntimeError) as exc:  # no network, no hub cache, no such weights
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"cannot get the pretrained weights of {self.name} ({first}); "
                "pass a local state-dict file instead"
            ) from None
        # what the model returns without a classifier: num_features, or the width of a head
        # layer after the pooling (MobileNetV3's conv_head), which timm calls head_hidden_size
        self.feature_dim = int(getattr(self.net, "head_hidden_size", None) or self.net.num_features)
        data = timm.data.resolve_data_config({}, model=self.net)
        self.input_size = tuple(int(s) for s in data["input_size"][1:])
        self.interpolation = "bicubic" if data.get("interpolation") == "bicubic" else "bilinear"
        # ImageNet-normalised in, the model's normalisation out: one scale and shift a channel
        mean, std = torch.tensor(data["mean"]), torch.tensor(data["std"])
        scale = torch.tensor(IMAGENET_STD) / std
        shift = (torch.tensor(IMAGENET_MEAN) - mean) / std
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("feature_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feature_std", torch.ones(self.feature_dim))
        self.frozen_stages = frozen_stages
        self._frozen = self._freeze(frozen_stages)
        self.train(self.training)

    def _freeze(self, frozen_stages: int) -> list[nn.Module]:
        """Freeze the first groups (see the module docstring); the modules left wholly frozen."""
        from timm.models import group_parameters

        groups = list(group_parameters(self.net, self.net.group_matcher(coarse=True)).values())
        count = round(frozen_stages * len(groups) / FREEZE_SCALE)
        frozen = {name for group in groups[:count] for name in group}
        for name, parameter in self.net.named_parameters():
            if name in frozen:
                parameter.requires_grad_(False)
        return [
            module
            for module in self.net.modules()
            if any(True for _ in module.parameters())
            and not any(p.requires_grad for p in module.parameters())
        ]

    def frozen_modules(self) -> list[nn.Module]:
        return self._frozen

    def train(self, mode: bool = True) -> TimmFeatures:
        """Set train/eval mode, keeping frozen modules in eval mode (their BN statistics fixed)."""
        super().train(mode)
        for module in getattr(self, "_frozen", ()):
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images (N, 3, H, W) into features (N, feature_dim), resized on x's device."""
        x = x * self.input_scale.to(x.dtype) + self.input_shift.to(x.dtype)
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode=self.interpolation, align_corners=False)
        return (self.net(x) - self.feature_mean) / self.feature_std


def classifier_prefixes(net: nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of a timm model's classifier (absent with ``num_classes=0``)."""
    names = net.pretrained_cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{n}." for n in names)


def load_timm_state(model: TimmFeatures, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a timm state dict (timm's own keys, or this module's ``net.``-prefixed ones) into
    ``model``; a key that is missing, unexpected or of another shape is an InputError naming
    the first one."""
    own = {"feature_mean", "feature_std"}
    extra = {k: v for k, v in state.items() if k in own}
    state = {k.removeprefix("net."): v for k, v in state.items() if k not in own}
    drop = classifier_prefixes(model.net)
    state = {k: v for k, v in state.items() if not (drop and k.startswith(drop))}
    expected = model.net.state_dict()
    problems = [
        f"{k!r} (missing from the file)"
        if k not in state
        else f"{k!r} (shape {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model)"
        for k, v in expected.items()
        if k not in state or state[k].shape != v.shape
    ] + [f"{k!r} (not in the model)" for k in state if k not in expected]
    problems += [
        f"{k!r} (shape {tuple(v.shape)}, {model.feature_dim} expected)"
        for k, v in extra.items()
        if v.shape != (model.feature_dim,)
    ]
    if problems:
        raise InputError(
            f"backbone weights do not fit {model.name}: first mismatched key {problems[0]}; "
            f"{len(problems)} keys differ",
            path=source,
        )
    model.net.load_state_dict(state)
    for k, v in extra.items():
        getattr(model, k).copy_(v)
