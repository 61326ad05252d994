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
from abaw_expr.model.temporal import TASK_WIDTHS, check_tasks, split_outputs
from abaw_expr.tasks import AU, VA


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


def batch_concordance(
    predicted: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """CCC of each column of (..., D) over the frames where ``keep`` (...,) is True, with
    population moments; (D,). Selected with ``where``, so other frames reach neither the value
    nor the gradient, and shapes stay fixed."""
    keep = keep[..., None]
    x = torch.where(keep, predicted.float(), 0.0).flatten(0, -2)
    y = torch.where(keep, truth.float(), 0.0).flatten(0, -2)
    k = keep.flatten(0, -2).float()
    n = k.sum(0).clamp(min=1)
    mx, my = x.sum(0) / n, y.sum(0) / n
    dx, dy = (x - mx) * k, (y - my) * k
    covariance = (dx * dy).sum(0) / n
    denominator = (dx * dx).sum(0) / n + (dy * dy).sum(0) / n + (mx - my) ** 2
    return 2 * covariance / (denominator + 1e-8)


class TaskLoss(nn.Module):
    """The loss of a head trained on one or several of ABAW's tracks (issue 20).

    - ``expr``: :class:`ExpressionLoss` (the paper's), on frames labelled 0..7;
    - ``va``: 1 - the mean CCC of valence and arousal over the batch's frames annotated for
      VA (no ``-5``), plus ``va_mse_weight`` times their mean squared error there;
    - ``au``: binary cross-entropy on the 12 AU logits over frames annotated for AU (not a
      row of ``-1``), positives weighted by ``au_pos_weight`` (the training split's negatives
      over positives per AU, set by the training module).

    The total is the sum of each track's loss times its weight; a track with no annotated frame
    in the batch adds a zero. Padded frames (``mask`` False) count for no track.
    """

    def __init__(
        self,
        tasks,
        expression: ExpressionLoss,
        weights: dict[str, float] | None = None,
        va_mse_weight: float = 0.0,
    ):
        super().__init__()
        self.tasks = check_tasks(tasks)
        self.expression = expression
        self.weights = {t: 1.0 for t in self.tasks} | (weights or {})
        if any(w < 0 for w in self.weights.values()) or va_mse_weight < 0:
            raise InputError(f"loss weights must be >= 0, got {self.weights}, {va_mse_weight}")
        self.va_mse_weight = va_mse_weight
        # Saved with checkpoints of AU heads only: expression checkpoints keep their keys.
        self.register_buffer(
            "au_pos_weight", torch.ones(TASK_WIDTHS["au"]), persistent="au" in self.tasks
        )

    def forward(self, outputs: torch.Tensor, targets: dict, mask: torch.Tensor | None = None):
        """outputs (B, T, width) from the head; targets: ``labels`` (B, T) for expr, ``va``
        (B, T, 2) with -5 where not annotated, ``au`` (B, T, 12) with -1 rows. Returns
        (total, {task: its unweighted loss})."""
        parts = split_outputs(outputs, self.tasks)
        if mask is None:
            mask = torch.ones(outputs.shape[:2], dtype=torch.bool, device=outputs.device)
        losses = {}
        if "expr" in parts:
            losses["expr"] = self.expression(parts["expr"], targets["labels"], mask)
        if "va" in parts:
            truth = targets["va"]
            keep = mask & VA.annotated(truth)
            ccc = batch_concordance(parts["va"], truth, keep)
            loss = 1 - ccc.mean()
            if self.va_mse_weight:
                error = torch.where(keep[..., None], parts["va"].float() - truth.float(), 0.0)
                loss = loss + self.va_mse_weight * (error**2).sum() / (2 * keep.sum().clamp(min=1))
            losses["va"] = torch.where(keep.any(), loss, 0.0 * loss)
        if "au" in parts:
            truth = targets["au"]
            keep = mask & AU.annotated(truth)
            logits = torch.where(keep[..., None], parts["au"].float(), 0.0)
            per_unit = F.binary_cross_entropy_with_logits(
                logits,
                truth.clamp(min=0).float(),
                pos_weight=self.au_pos_weight,
                reduction="none",
            )
            per_unit = torch.where(keep[..., None], per_unit, 0.0)
            losses["au"] = per_unit.sum() / (keep.sum().clamp(min=1) * per_unit.shape[-1])
        total = sum(self.weights[t] * losses[t] for t in self.tasks)
        return total, losses
