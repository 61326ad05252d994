"""Trains a tiny run and kills itself with SIGKILL at a given training step (mid-epoch).

Run by tests/test_robustness.py as a separate process: nothing is flushed, closed or saved
on the way out, as when a cluster's scheduler kills a job.
"""

import os
import signal
import sys
from pathlib import Path

import lightning as L

from abaw_expr.training.loop import train

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.conftest import tiny_config  # noqa: E402


class KillAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    sample, out, epochs, kill_at, workers = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]) if len(sys.argv) > 5 else 0,
    )
    train(
        tiny_config(trainer__epochs=epochs, data__num_workers=workers),
        sample / "annotations",
        out,
        images_dir=sample / "cropped_aligned",
        enable_progress_bar=False,
        callbacks=[KillAtStep(kill_at)],
    )


if __name__ == "__main__":
    main()
