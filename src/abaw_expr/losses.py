"""The training loss: softmax focal loss plus a label-smoothing KL term, over real frames only.

Per counted frame, with p = softmax(logits), y the label and C classes::

    focal = alpha * (1 - p_y) ** gamma * (-log p_y)
    t     = (1 - smoothing) * onehot(y) + smoothing / C
    kl    = sum_c t_c * (log t_c - log p_c)
    loss  = focal + kl_weight * kl

and the result is the mean over counted frames (mask True and label >= 0).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from abaw_expr.errors import InputError


class ExpressionLoss(nn.Module):
    """Focal loss (scalar alpha) + ``kl_weight`` * KL(smoothed one-hot || softmax)."""

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float = 0.9,
        kl_weight: float = 0.2,
        smoothing: float = 0.1,
    ):
        super().__init__()
        if gamma < 0 or alpha <= 0 or kl_weight < 0 or not 0 <= smoothing < 1:
            raise InputError(
                "loss settings need gamma >= 0, alpha > 0, kl_weight >= 0 and "
                f"0 <= smoothing < 1; got gamma={gamma}, alpha={alpha}, "
                f"kl_weight={kl_weight}, smoothing={smoothing}"
            )
        self.gamma = gamma
        self.alpha = alpha
        self.kl_weight = kl_weight
        self.smoothing = smoothing

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """logits (B, T, C), labels (B, T) int64 (-1 = unannotated), mask (B, T) bool.

        Returns a float32 scalar; a zero that keeps the graph when no frame counts.
        """
        num_classes = logits.shape[-1]
        keep = labels >= 0
        if mask is not None:
            keep = keep & mask
        # Selecting with where (rather than weighting by the mask) keeps junk logits of padded
        # frames, even inf/NaN, out of the loss and its gradient; unlike indexing by the mask,
        # it keeps every shape fixed, so the step never waits for the device to count frames.
        z = torch.where(keep[..., None], logits.float(), 0.0)
        y = labels.clamp(min=0)

        log_p = F.log_softmax(z, dim=-1)
        log_p_y = log_p.gather(-1, y[..., None]).squeeze(-1)
        focal = self.alpha * (1.0 - log_p_y.exp()).pow(self.gamma) * -log_p_y

        target = F.one_hot(y, num_classes).float() * (1.0 - self.smoothing)
        target = target + self.smoothing / num_classes
        kl = (torch.xlogy(target, target) - target * log_p).sum(dim=-1)
        per_frame = torch.where(keep, focal + self.kl_weight * kl, 0.0)
        return per_frame.sum() / keep.sum().clamp(min=1)
