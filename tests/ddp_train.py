"""Two epochs of DDP with 2 CPU processes (gloo); each rank writes what it ended with.

Run by tests/test_training.py as a script: Lightning's ``ddp`` strategy starts rank 1 by
running this file again with LOCAL_RANK set.
"""

import json
import sys
from pathlib import Path

import lightning as L

from abaw_expr.training import train

sys.path.insert(0, str(Path(__file__).parents[1]))  # rank 1 re-runs this file as a script
from tests.conftest import tiny_config  # noqa: E402


class RecordRank(L.Callback):
    def __init__(self, out: Path):
        self.out = out
        self.windows: dict[int, list] = {}  # epoch -> (video, first frame) of each window trained

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        starts = zip(batch["video"].tolist(), batch["frames"][:, 0].tolist(), strict=True)
        self.windows.setdefault(trainer.current_epoch, []).extend(starts)

    def on_train_end(self, trainer, module):
        checksum = sum(float(p.detach().double().abs().sum()) for p in module.parameters())
        record = {
            "world_size": trainer.world_size,
            "epochs": trainer.current_epoch,
            "param_checksum": checksum,
            "val_macro_f1": float(trainer.callback_metrics["val/macro_f1"]),
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
        callbacks=[RecordRank(out)],
        overwrite=True,
    )


if __name__ == "__main__":
    main()
