"""Two epochs of DDP with 2 CPU processes (gloo); each rank writes what it ended with.

Run by tests/test_training.py as a script: Lightning's ``ddp`` strategy starts rank 1 by
running this file again with LOCAL_RANK set.
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import default_collate

from abaw_expr.training.loop import train

sys.path.insert(0, str(Path(__file__).parents[1]))  # rank 1 re-runs this file as a script
from tests.conftest import tiny_config  # noqa: E402


class SpreadPredictions(L.Callback):
    """Two epochs leave the tiny model predicting one class, which validation may not hold:
    macro F1 is then 0 however the frames are counted. Before every validation the classifier
    is set, on purpose, to the nearest class mean of the (standardised) inputs it gets on the
    validation frames, so that it predicts the several classes there, some frames right and
    some wrong: a frame counted twice, or not at all, then moves the F1. Rank 0's choice is
    broadcast; last.ckpt holds it."""

    def on_validation_start(self, trainer, module):
        data = trainer.datamodule
        batch = default_collate([data.val_set[i] for i in range(len(data.val_set))])
        batch = data.on_after_batch_transfer(batch, 0)
        classifier = module.model.head.classifier
        seen = []
        hook = classifier.register_forward_hook(lambda m, args, out: seen.append(args[0]))
        with torch.no_grad():
            module(batch["x"], batch["mask"])
        hook.remove()
        labelled = batch["mask"] & (batch["labels"] >= 0)
        inputs, labels = seen[0][labelled], batch["labels"][labelled]
        mean, std = inputs.mean(0), inputs.std(0) + 1e-6
        weight = torch.zeros_like(classifier.weight)
        bias = torch.full_like(classifier.bias, -1e4)  # classes validation does not hold
        for c in labels.unique().tolist():
            centre = ((inputs[labels == c] - mean) / std).mean(0)  # z-space class mean
            weight[c] = centre / std
            bias[c] = -(weight[c] @ mean) - 0.5 * centre @ centre
        weight, bias = trainer.strategy.broadcast((weight, bias), src=0)
        with torch.no_grad():
            classifier.weight.copy_(weight)
            classifier.bias.copy_(bias)


class RecordRank(L.Callback):
    def __init__(self, out: Path):
        self.out = out
        self.windows: dict[int, list] = {}  # epoch -> (video, first frame) of each window trained

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        starts = zip(batch["video"].tolist(), batch["frames"][:, 0].tolist(), strict=True)
        self.windows.setdefault(trainer.current_epoch, []).extend(starts)

    def on_validation_epoch_end(self, trainer, module):
        # Before the module's own hook resets it: the confusion matrix as val/macro_f1 sees it.
        confusion = module.val_confusion.compute()
        self.val_frames = int(confusion.sum())
        self.val_predicted = int((confusion.sum(0) > 0).sum())  # classes predicted

    def on_train_end(self, trainer, module):
        checksum = sum(float(p.detach().double().abs().sum()) for p in module.parameters())
        record = {
            "world_size": trainer.world_size,
            "epochs": trainer.current_epoch,
            "param_checksum": checksum,
            "val_macro_f1": float(trainer.callback_metrics["val/macro_f1"]),
            "val_frames": self.val_frames,
            "val_predicted_classes": self.val_predicted,
            "train_windows": {str(e): w for e, w in self.windows.items()},
            "train_set_size": len(trainer.datamodule.train_set),
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def main() -> None:
    sample, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = tiny_config(
        data__batch_size=2,
        trainer__epochs=2,
        trainer__accelerator="cpu",
        trainer__devices="2",
        trainer__strategy="ddp",
    )
    out.mkdir(parents=True, exist_ok=True)
    train(
        config,
        sample / "annotations",
        out / "run",
        images_dir=sample / "cropped_aligned",
        enable_progress_bar=False,
        callbacks=[SpreadPredictions(), RecordRank(out)],
        overwrite=True,
    )


if __name__ == "__main__":
    main()
