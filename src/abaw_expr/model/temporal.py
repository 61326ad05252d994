"""The temporal head and the full model: per-frame RegNet features -> per-frame logits.

Wiring follows the authors' code (Phan et al., ABAW3 2022), which builds its modules from the
2022 vit-pytorch ``Attention`` / ``Transformer`` classes:

- attention branch: multi-head self-attention alone (q/k/v Linear without bias, scaled
  dot-product softmax, output Linear with bias); no LayerNorm, no residual;
- encoder branch: one pre-norm Transformer encoder layer, ``x + MHSA(LN(x))`` then
  ``x + FF(LN(x))`` with FF = Linear -> GELU -> Linear. vit-pytorch's ``Transformer`` of that
  time (PreNorm blocks) had no final LayerNorm, so none is applied here;
- no positional encoding; the head concatenates ``[features, attention, encoder]`` along the
  feature axis, applies Dropout(0.5) and a Linear to the classes, independently per frame.

The variants reproduce the authors' ablations: ``combine`` (all three), ``only_att``,
``only_trans`` and ``no_att_trans`` (backbone features only). Head parameters keep PyTorch's
default initialisation, as in the authors' code (their custom init ran before the head existed).

Beyond the paper, opt-in: ``positional="relative"`` adds to every attention score of both
branches a bias ``-slope_h * |i - j|`` (ALiBi, Press et al. 2022) with one learned slope per
head, started at ALiBi's geometric slopes (1/2, 1/4, ...). Without it the attention and the
encoder see a window as a bag of frames: a frame that looks neutral cannot tell whether it
sits inside an expression segment or in the Neutral stretch beside it. The slopes add
``heads`` parameters per branch and work for any window length. The default, ``"none"``, is
the paper's model exactly.

Beyond the paper, opt-in: ``causal=True`` lets each position of both branches attend only to
itself and earlier positions (a lower-triangular mask, with the padding mask and the position
bias), so that a frame's output never depends on a later frame: what a live source allows
(``abaw-expr live``). Trained so, every position of a training window is a causal prediction
(from 1 to ``seq_len`` frames of context). No parameter changes; the default, ``False``, is the
paper's bidirectional attention (the paper is offline).

Beyond the paper, ABAW's other frame-level tracks: ``tasks`` names the outputs, in the fixed
order ``expr`` (8 expression logits, the paper's ``classifier``), ``va`` (valence and arousal,
``tanh`` so in [-1, 1]) and ``au`` (12 action-unit logits). Every task head is a Linear on the
same concatenation after the same dropout, and the head returns their outputs side by side,
(B, T, 8 + 2 + 12) for all three; :func:`split_outputs` names the parts. With
``tasks=("expr",)``, the default, the head is the paper's, parameter for parameter.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from abaw_expr.config import VARIANTS
from abaw_expr.errors import InputError
from abaw_expr.model.backbone import FEATURE_DIM
from abaw_expr.tasks import AU_NAMES, NUM_CLASSES, TASKS

# The outputs of each task, in the order the head concatenates them.
TASK_WIDTHS: dict[str, int] = {name: task.width for name, task in TASKS.items()}
POSITIONAL: tuple[str, ...] = ("none", "relative")  # "none" is the paper's


def check_tasks(tasks) -> tuple[str, ...]:
    """``tasks`` in the head's order; an unknown or repeated name, or none, is an InputError."""
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASK_WIDTHS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise InputError(
            f"model tasks must be a non-empty subset of {list(TASK_WIDTHS)}, got {list(tasks)}"
        )
    return tuple(t for t in TASK_WIDTHS if t in tasks)


def task_slices(tasks) -> dict[str, slice]:
    """Where each task's outputs sit along the last axis of the head's output."""
    slices, start = {}, 0
    for task in check_tasks(tasks):
        slices[task] = slice(start, start + TASK_WIDTHS[task])
        start += TASK_WIDTHS[task]
    return slices


def split_outputs(outputs: torch.Tensor, tasks) -> dict[str, torch.Tensor]:
    """The head's (..., width) output as ``{task: (..., its width)}``."""
    return {task: outputs[..., where] for task, where in task_slices(tasks).items()}


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's starting slopes: 2^-1, 2^-2, ... (one per head)."""
    return torch.tensor([2.0 ** -(h + 1) for h in range(heads)])


class SelfAttention(nn.Module):
    """Multi-head self-attention over frames with an optional key padding mask."""

    def __init__(
        self,
        dim: int,
        heads: int = 2,
        head_dim: int = 64,
        dropout: float = 0.0,
        positional: str = "none",
        causal: bool = False,
    ):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.causal = causal  # beyond the paper (opt-in): attend to earlier positions only
        self.to_qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim)
        # Beyond the paper (opt-in): learned per-head slopes of a distance penalty.
        self.position_slopes = (
            nn.Parameter(alibi_slopes(heads)) if positional == "relative" else None
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, dim); mask: (B, T) bool, True = real frame. Returns (B, T, dim)."""
        # unflatten/flatten rather than view(b, t, ...): exported graphs keep B and T dynamic
        qkv = self.to_qkv(x).unflatten(-1, (3, self.heads, self.head_dim))
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn_mask = None
        if mask is not None:
            # A window with no real frame would give all -inf rows (NaN); let it attend freely.
            mask = mask | ~mask.any(dim=1, keepdim=True)
            attn_mask = mask[:, None, None, :]  # (B, 1, 1, T): True = may be attended to
        if self.causal:
            # query i may see keys j <= i; a padded or all-padding row keeps at least itself
            query, key = _positions(x)[:, None], _positions(x)[None, :]
            earlier = key <= query  # (T, T)
            if attn_mask is not None:
                earlier = earlier & attn_mask | (key == query)  # (B, 1, T, T)
            attn_mask = earlier
        if self.position_slopes is not None:
            position = _positions(x)
            distance = (position[None, :] - position[:, None]).abs()  # (T, T)
            bias = -self.position_slopes.to(x.dtype)[:, None, None] * distance  # (H, T, T)
            if attn_mask is not None:
                bias = bias.masked_fill(~attn_mask, float("-inf"))  # (B, H, T, T)
            attn_mask = bias
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.to_out(out.transpose(1, 2).flatten(2))


def _positions(x: torch.Tensor) -> torch.Tensor:
    """Positions 1..T of x (B, T, dim) from its values, not its shape: the ONNX exporter folds
    arange(T) and ones_like(x) into constants of the example's length; T must stay dynamic."""
    return torch.where(torch.isfinite(x[0, :, 0]), 1.0, 1.0).to(x.dtype).cumsum(0)


class EncoderLayer(nn.Module):
    """One pre-norm Transformer encoder layer (vit-pytorch style, no final LayerNorm)."""

    def __init__(
        self,
        dim: int,
        heads: int = 2,
        head_dim: int = 64,
        ff_dim: int = 512,
        attn_dropout: float = 0.0,
        positional: str = "none",
        causal: bool = False,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, head_dim, attn_dropout, positional, causal)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, dim); mask: (B, T) bool, True = real frame. Returns (B, T, dim)."""
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ff(self.norm2(x))


class TemporalHead(nn.Module):
    """Per-frame classifier over a window of backbone features: (B, T, 888) -> (B, T, 8)."""

    def __init__(
        self,
        variant: str = "combine",
        feature_dim: int = FEATURE_DIM,
        num_classes: int = NUM_CLASSES,
        heads: int = 2,
        head_dim: int = 64,
        ff_dim: int = 512,
        dropout: float = 0.5,
        attn_dropout: float = 0.0,
        positional: str = "none",
        tasks: tuple[str, ...] | list[str] = ("expr",),
        causal: bool = False,
    ):
        super().__init__()
        self.tasks = check_tasks(tasks)
        if variant not in VARIANTS:
            raise InputError(f"unknown model variant {variant!r}; expected one of {VARIANTS}")
        if positional not in POSITIONAL:
            raise InputError(f"unknown positional {positional!r}; expected one of {POSITIONAL}")
        self.variant = variant
        self.positional = positional
        self.causal = bool(causal)
        self.feature_dim = feature_dim
        self.attention = (
            SelfAttention(feature_dim, heads, head_dim, attn_dropout, positional, self.causal)
            if variant in ("combine", "only_att")
            else None
        )
        self.encoder = (
            EncoderLayer(
                feature_dim, heads, head_dim, ff_dim, attn_dropout, positional, self.causal
            )
            if variant in ("combine", "only_trans")
            else None
        )
        branches = 1 + (self.attention is not None) + (self.encoder is not None)
        self.dropout = nn.Dropout(dropout)
        width = branches * feature_dim
        self.classifier = nn.Linear(width, num_classes) if "expr" in self.tasks else None
        self.va_regressor = nn.Linear(width, 2) if "va" in self.tasks else None
        self.au_classifier = nn.Linear(width, len(AU_NAMES)) if "au" in self.tasks else None

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """features: (B, T, feature_dim); mask: (B, T) bool, True = real frame (None = all).

        Padded frames are never attended to, so they cannot change real frames' logits;
        their own logits are meaningless and must be ignored by the caller.

        The head always runs in float32, also under a bf16 autocast: it is a small part of the
        cost, and end-to-end bf16-mixed training on an H100 gave a NaN loss within two epochs
        with the head in bf16 and none with it in float32 (benchmarks/RESULTS.md).
        """
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            parts = [features]
            if self.attention is not None:
                parts.append(self.attention(features, mask))
            if self.encoder is not None:
                parts.append(self.encoder(features, mask))
            joined = self._drop(torch.cat(parts, dim=-1))
            if self.tasks == ("expr",):
                return self.classifier(joined)  # the paper's head
            outputs = []
            if self.classifier is not None:
                outputs.append(self.classifier(joined))
            if self.va_regressor is not None:
                outputs.append(torch.tanh(self.va_regressor(joined)))
            if self.au_classifier is not None:
                outputs.append(self.au_classifier(joined))
            return torch.cat(outputs, dim=-1)

    @property
    def output_width(self) -> int:
        return sum(TASK_WIDTHS[t] for t in self.tasks)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """``self.dropout``, with the mask drawn by ``rand_like`` on a CPU: PyTorch's CPU dropout
        draws it with ``bernoulli_``, which took 60 of a 260 ms training step of the combine head
        on the 2-core CPU (``rand_like``: 18 ms; benchmarks/RESULTS.md). Same distribution and
        scaling; on CUDA the fused kernel is faster, so it stays."""
        p = self.dropout.p
        if not self.training or x.device.type != "cpu" or not 0 < p < 1:
            return self.dropout(x)
        return x * (torch.rand_like(x) >= p) * (1 / (1 - p))


class ExpressionModel(nn.Module):
    """Backbone (optional) + temporal head: frames or cached features -> per-frame logits."""

    def __init__(self, backbone: nn.Module | None, head: TemporalHead):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.channels_last = False  # frames go to the backbone in channels-last layout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: frames (B, T, 3, H, W) or cached features (B, T, feature_dim). Returns (B, T, C).

        Every slot of every window goes through the backbone, padding included, so the shape
        is always (B * T, 3, H, W): fixed shapes are what ``cudnn.benchmark`` and compilation
        need, and no step waits for the device to count real frames. The data put a real face
        in every padded or unreadable slot (a repeat from the same window); the head never
        attends to those slots and the loss never counts them. In train mode they do enter the
        trained stages' BatchNorm batch statistics, as repeats: on Aff-Wild2 at most 63 of a
        video's ~10,000 training slots (README, "Decisions").
        """
        if x.dim() == 3:
            if x.shape[-1] != self.head.feature_dim:
                raise ValueError(
                    f"expected features (B, T, {self.head.feature_dim}), got {tuple(x.shape)}"
                )
            return self.head(x, mask)
        if x.dim() != 5:
            raise ValueError(
                f"expected (B, T, 3, H, W) frames or (B, T, F) features, got {tuple(x.shape)}"
            )
        if self.backbone is None:
            raise ValueError("this model has no backbone; pass cached features (B, T, F)")
        frames = x.flatten(0, 1)
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        features = self.backbone(frames).unflatten(0, x.shape[:2])
        return self.head(features, mask)


def count_parameters(model: ExpressionModel | TemporalHead) -> dict[str, int]:
    """Parameter counts per part: backbone, attention, encoder, head (classifier), total.

    Counts all parameters, trainable or not; ``trainable`` is the total with
    ``requires_grad=True``.
    """
    head = model.head if isinstance(model, ExpressionModel) else model
    backbone = model.backbone if isinstance(model, ExpressionModel) else None

    def n(module: nn.Module | None) -> int:
        return 0 if module is None else sum(p.numel() for p in module.parameters())

    return {
        "backbone": n(backbone),
        "attention": n(head.attention),
        "encoder": n(head.encoder),
        "head": n(head.classifier) + n(head.va_regressor) + n(head.au_classifier),
        "total": n(model),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
