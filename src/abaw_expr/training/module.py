"""The LightningModule: the model, the authors' loss on masked-in frames, optimiser and scheduler.

``val/macro_f1`` is the ABAW macro F1 over the annotated frames with a face of the validation
windows, computed from a confusion matrix that torchmetrics synchronises across DDP ranks.

The training step never waits for the device: the loss is read on the host only every
``trainer.log_every_n_steps`` steps (for the progress bar, the step log and the NaN guard),
the epoch's mean loss is accumulated on the device and synchronised across processes once an
epoch, and the shapes through the backbone are fixed (every slot of every window runs).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix, MultilabelStatScores

from abaw_expr.config import config_from_dict
from abaw_expr.evaluation.metrics import abaw_sum, f1_from_confusion
from abaw_expr.model.build import (
    build_model,  # the model from its config; inference imports it from .build
)
from abaw_expr.model.temporal import check_tasks, split_outputs
from abaw_expr.tasks import AU, AU_NAMES, EXPR, NUM_CLASSES, SUM_SCORE, VA, best_epoch_key
from abaw_expr.training.losses import ExpressionLoss, TaskLoss


class ConcordanceSums(Metric):
    """Lin's CCC of each column, pooled over every frame of an epoch and across processes, from
    running sums (population moments, as ABAW's VA metric; float64)."""

    def __init__(self, columns: int = 2):
        super().__init__()
        for name in ("n", "sx", "sy", "sxx", "syy", "sxy"):
            self.add_state(name, torch.zeros(columns, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predicted: torch.Tensor, truth: torch.Tensor) -> None:
        x, y = predicted.double(), truth.double()
        self.n += x.new_full(x.shape[1:], len(x))
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.sxx += (x * x).sum(0)
        self.syy += (y * y).sum(0)
        self.sxy += (x * y).sum(0)

    def compute(self) -> torch.Tensor:
        n = self.n.clamp(min=1)
        mx, my = self.sx / n, self.sy / n
        vx, vy = self.sxx / n - mx**2, self.syy / n - my**2
        denominator = vx + vy + (mx - my) ** 2
        ccc = 2 * (self.sxy / n - mx * my) / denominator.clamp(min=1e-12)
        return torch.where(denominator > 0, ccc, 0.0)


def au_positive_weights(index) -> torch.Tensor:
    """Per AU, the training frames' negatives over positives (1 for an AU never positive): the
    binary cross-entropy then weighs a rare AU's positives as much as its negatives."""
    rows = [v.au[v.annotated_for("au") & v.has_image] for v in index if v.au is not None]
    rows = np.concatenate(rows) if rows else np.zeros((0, len(AU_NAMES)))
    positives = rows.sum(0).astype(np.float64)
    negatives = len(rows) - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.from_numpy(weights).float()


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class ExpressionModule(L.LightningModule):
    """``config`` is :meth:`Config.to_dict` (saved in the checkpoint); ``with_backbone=False``
    trains the temporal head alone on cached features."""

    def __init__(self, config: dict, with_backbone: bool = True):
        super().__init__()
        self.save_hyperparameters()
        self.config = config_from_dict(config)
        self.model = build_model(self.config, with_backbone)
        c = self.config.loss
        self.tasks = check_tasks(self.config.model.tasks)
        self.loss = TaskLoss(
            self.tasks,
            ExpressionLoss(
                gamma=c.gamma, alpha=c.alpha, kl_weight=c.kl_weight, smoothing=c.smoothing
            ),
            weights={"expr": c.expr_weight, "va": c.va_weight, "au": c.au_weight},
            va_mse_weight=c.va_mse_weight,
        )
        self.lr = self.config.optim.lr  # Lightning's LR finder updates this attribute
        self.val_confusion = MulticlassConfusionMatrix(
            NUM_CLASSES,
            ignore_index=-1,
            validate_args=False,  # its checks read the device
        )
        # Other tracks (issue 20): pooled CCC moments and per-AU counts, synchronised by DDP.
        self.val_concordance = ConcordanceSums() if "va" in self.tasks else None
        self.val_au = (
            MultilabelStatScores(len(AU_NAMES), average=None, ignore_index=-1, validate_args=False)
            if "au" in self.tasks
            else None
        )
        # The first non-finite training loss (batch, global step, value), kept on the device.
        self.register_buffer("_bad", torch.tensor([-1.0, -1.0, 0.0]), persistent=False)
        t = self.config.trainer
        if with_backbone and t.channels_last:
            self.model.backbone.to(memory_format=torch.channels_last)
            self.model.channels_last = True

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if stage == "fit" and "au" in self.tasks and datamodule is not None:
            self.loss.au_pos_weight.copy_(au_positive_weights(datamodule.indexes["Train_Set"]))
        if stage == "fit" and self.model.backbone is not None and self.config.trainer.compile:
            # In place: the state dict keeps its keys, checkpoints stay loadable without compile.
            self.model.backbone.compile()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Every checkpoint records where its model comes from (``self.provenance``, set by the
        training loop) and the validation scores of the epoch it is written at."""
        record = getattr(self, "provenance", None)
        if record is None:
            return
        metrics = self.trainer.callback_metrics if self._trainer else {}
        checkpoint["provenance"] = {
            **record,
            "validation": {k: float(v) for k, v in metrics.items() if k.startswith("val/")},
            "epoch": self.current_epoch,
        }

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, mask)

    @property
    def monitor(self) -> str:
        """What picks the best epoch and drives the plateau schedule: the paper's validation
        macro F1 for the expression track alone, else the chosen tracks' ABAW sum."""
        return best_epoch_key(self.tasks)

    def _step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self(batch["x"], batch["mask"])
        return outputs, self.loss(outputs, batch, batch["mask"])[0]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        _, loss = self._step(batch)
        value = loss.detach()
        first = ~torch.isfinite(value) & (self._bad[0] < 0)
        # full_like fills on the device: a tensor made from a host number would be a copy
        found = torch.stack(
            [torch.full_like(value, batch_idx), torch.full_like(value, self.global_step), value]
        )
        self._bad = torch.where(first, found, self._bad)
        self.log(  # summed on the device, synchronised across processes once an epoch
            "train/loss_epoch",
            value,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["x"]),
            sync_dist=True,
        )
        if (self.global_step + 1) % self.config.trainer.log_every_n_steps == 0:
            self._stop_if_loss_was_not_finite()  # the one host read of the step, every N steps
            self.log("train/loss_step", value, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_train_start(self) -> None:
        self._bad.copy_(torch.tensor([-1.0, -1.0, 0.0]))

    def on_train_epoch_end(self) -> None:
        # Before the epoch's checkpoints are written: last.ckpt keeps the last good epoch.
        self._stop_if_loss_was_not_finite()

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self._stop_if_loss_was_not_finite()

    def _stop_if_loss_was_not_finite(self) -> None:
        batch, step, value = self._bad.tolist()
        if batch >= 0:
            raise NonFiniteLossError(
                f"loss is {value} at epoch {self.current_epoch}, step {int(step)} "
                f"(batch {int(batch)} of the epoch); the last good checkpoint is kept: "
                "lower optim.lr or check the data"
            )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits, loss = self._step(batch)
        self.log(
            "val/loss",
            loss,
            prog_bar=False,
            on_epoch=True,
            batch_size=len(batch["x"]),
            sync_dist=True,
        )
        mask = batch["mask"]
        parts = split_outputs(logits, self.tasks)
        if "expr" in parts:
            labels = torch.where(mask, batch["labels"], torch.full_like(batch["labels"], -1))
            self.val_confusion.update(parts["expr"].argmax(-1).flatten(), labels.flatten())
        if "va" in parts:
            keep = mask & VA.annotated(batch["va"])
            self.val_concordance.update(parts["va"][keep], batch["va"][keep])
        if "au" in parts:
            truth = torch.where(mask[..., None], batch["au"], -1.0).long()
            # on at a probability of 0.5 or more, sigmoid(0) included, as evaluate predicts
            self.val_au.update((parts["au"] >= 0).long().flatten(0, 1), truth.flatten(0, 1))

    def on_validation_epoch_end(self) -> None:
        scores = {}
        if "expr" in self.tasks:
            cm = self.val_confusion.compute().cpu().numpy()
            self.val_confusion.reset()
            scores["expr"] = float(f1_from_confusion(cm).mean())
            self.log(EXPR.score, scores["expr"], prog_bar=True, sync_dist=False)
        if "va" in self.tasks:
            ccc = self.val_concordance.compute().cpu()
            self.val_concordance.reset()
            scores["va"] = float(ccc.mean())
            valence, arousal, mean = VA.logged
            self.log(valence, float(ccc[0]), sync_dist=False)
            self.log(arousal, float(ccc[1]), sync_dist=False)
            self.log(mean, scores["va"], prog_bar=True, sync_dist=False)
        if "au" in self.tasks:
            tp, fp, _, fn, _ = self.val_au.compute().cpu().double().unbind(-1)
            self.val_au.reset()
            denominator = 2 * tp + fp + fn
            f1 = torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), 0.0)
            scores["au"] = float(f1.mean())
            self.log(AU.score, scores["au"], prog_bar=True, sync_dist=False)
        if self.tasks != ("expr",):
            self.log(SUM_SCORE, abaw_sum(scores), prog_bar=True, sync_dist=False)

    def configure_optimizers(self):
        o = self.config.optim
        params = [p for p in self.parameters() if p.requires_grad]
        # One fused kernel for the whole update on CUDA and on a CPU (there 5 % of a step of the
        # combine head on cached features, 2-core CPU); the default (foreach) elsewhere.
        devices = {p.device.type for p in params}
        fused = {"fused": True} if devices in ({"cuda"}, {"cpu"}) else {}
        if o.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=o.weight_decay, **fused)
        else:
            optimizer = torch.optim.Adam(params, lr=self.lr, **fused)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=o.plateau_factor, patience=o.plateau_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.monitor,
                "interval": "epoch",
            },
        }
