"""The LightningModule: the model, the authors' loss on masked-in frames, optimiser and scheduler.

``val/macro_f1`` is the ABAW macro F1 over the annotated frames with a face of the validation
windows, computed from a confusion matrix that torchmetrics synchronises across DDP ranks.
"""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from ..classes import NUM_CLASSES
from ..config import Config, config_from_dict
from ..losses import ExpressionLoss
from ..metrics import f1_from_confusion
from .backbone import build_backbone
from .temporal import ExpressionModel, TemporalHead


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


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
    )
    return ExpressionModel(backbone, head)


class ExpressionModule(L.LightningModule):
    """``config`` is :meth:`Config.to_dict` (saved in the checkpoint); ``with_backbone=False``
    trains the temporal head alone on cached features."""

    def __init__(self, config: dict, with_backbone: bool = True):
        super().__init__()
        self.save_hyperparameters()
        self.config = config_from_dict(config)
        self.model = build_model(self.config, with_backbone)
        c = self.config.loss
        self.loss = ExpressionLoss(
            gamma=c.gamma, alpha=c.alpha, kl_weight=c.kl_weight, smoothing=c.smoothing
        )
        self.lr = self.config.optim.lr  # Lightning's LR finder updates this attribute
        self.val_confusion = MulticlassConfusionMatrix(NUM_CLASSES, ignore_index=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, mask)

    def _step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["x"], batch["mask"])
        return logits, self.loss(logits, batch["labels"], batch["mask"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        _, loss = self._step(batch)
        if not torch.isfinite(loss):
            # Stop before the step poisons the weights; last.ckpt keeps the last good epoch.
            raise NonFiniteLossError(
                f"loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step} "
                f"(batch {batch_idx}); the last good checkpoint is kept: lower optim.lr or check the data"
            )
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=len(batch["x"]),
            sync_dist=True,
        )
        return loss

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
        labels = torch.where(batch["mask"], batch["labels"], torch.full_like(batch["labels"], -1))
        self.val_confusion.update(logits.argmax(-1).flatten(), labels.flatten())

    def on_validation_epoch_end(self) -> None:
        cm = self.val_confusion.compute().cpu().numpy()
        self.val_confusion.reset()
        f1 = f1_from_confusion(cm)
        self.log("val/macro_f1", float(f1.mean()), prog_bar=True, sync_dist=False)

    def configure_optimizers(self):
        o = self.config.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if o.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=o.weight_decay)
        else:
            optimizer = torch.optim.Adam(params, lr=self.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=o.plateau_factor, patience=o.plateau_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": "val/macro_f1",
                "interval": "epoch",
            },
        }
