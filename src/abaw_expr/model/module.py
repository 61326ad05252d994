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
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from ..classes import NUM_CLASSES
from ..config import config_from_dict
from ..losses import ExpressionLoss
from ..metrics import f1_from_confusion
from .build import build_model  # the model from its config; inference imports it from .build


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
        self.loss = ExpressionLoss(
            gamma=c.gamma, alpha=c.alpha, kl_weight=c.kl_weight, smoothing=c.smoothing
        )
        self.lr = self.config.optim.lr  # Lightning's LR finder updates this attribute
        self.val_confusion = MulticlassConfusionMatrix(
            NUM_CLASSES,
            ignore_index=-1,
            validate_args=False,  # its checks read the device
        )
        # The first non-finite training loss (batch, global step, value), kept on the device.
        self.register_buffer("_bad", torch.tensor([-1.0, -1.0, 0.0]), persistent=False)
        t = self.config.trainer
        if with_backbone and t.channels_last:
            self.model.backbone.to(memory_format=torch.channels_last)
            self.model.channels_last = True

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.model.backbone is not None and self.config.trainer.compile:
            # In place: the state dict keeps its keys, checkpoints stay loadable without compile.
            self.model.backbone.compile()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, mask)

    def _step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["x"], batch["mask"])
        return logits, self.loss(logits, batch["labels"], batch["mask"])

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
                "monitor": "val/macro_f1",
                "interval": "epoch",
            },
        }
