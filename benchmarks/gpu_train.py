"""End-to-end training throughput on a GPU, and whether the JPEG loader keeps up.

    PYTHONPATH=src python benchmarks/gpu_train.py [--videos 40] [--workers 14]

On a generated sample (``--videos`` x 300 frames): frames per second of the training data
loader alone (decode + augment, ``--workers`` processes), then of end-to-end training with the
paper's recipe (112 px, 16 x 64 faces a step, bf16-mixed), timed over the second epoch. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch

from abaw_expr.config import Config
from abaw_expr.data.datamodule import ExpressionDataModule
from abaw_expr.data.sample import write_sample
from abaw_expr.training import train


class EpochClock(L.Callback):
    def __init__(self):
        self.seconds, self.frames = [], []

    def on_train_epoch_start(self, trainer, module):
        self.start, self.count = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.count += int(batch["mask"].sum())
        self.last = time.perf_counter()  # validation, which follows the last batch, not counted

    def on_train_epoch_end(self, trainer, module):
        self.seconds.append(self.last - self.start)
        self.frames.append(self.count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--workers", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_train"))
    parser.add_argument(
        "--precision", default="auto", help="auto (bf16-mixed on CUDA), 32-true, ..."
    )
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--skip-loader", action="store_true")
    args = parser.parse_args()
    root = args.out
    write_sample(root / "sample", train_videos=args.videos, val_videos=2, frames=300)
    images, annotations = root / "sample" / "cropped_aligned", root / "sample" / "annotations"
    config = Config()
    config.model.backbone_weights = "none"
    config.trainer.epochs = 2
    config.optim.lr = args.lr  # random weights diverge at the paper's 1e-3
    config.trainer.precision = args.precision
    config.data.num_workers = args.workers
    result = {"gpu": torch.cuda.get_device_name(), "workers": args.workers, "lr": args.lr}

    if not args.skip_loader:
        dm = ExpressionDataModule(config.data, annotations, images)
        dm.setup("fit")
        for _ in range(2):  # the second pass: workers started, page cache warm
            start, frames = time.perf_counter(), 0
            for batch in dm.train_dataloader():
                frames += int(batch["x"].shape[0] * batch["x"].shape[1])
        result["loader_fps"] = round(frames / (time.perf_counter() - start))

    clock = EpochClock()
    torch.cuda.reset_peak_memory_stats()
    try:
        train(config, annotations, root / "run", images_dir=images, enable_progress_bar=False,
              callbacks=[clock], overwrite=True)  # fmt: skip
    except RuntimeError as err:  # a NaN loss: say where, keep the timings so far
        result["stopped"] = str(err).splitlines()[0]
    result["train_epoch_s"] = [round(s, 1) for s in clock.seconds]
    if clock.seconds:
        result["train_fps_last_epoch"] = round(clock.frames[-1] / clock.seconds[-1])
    result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
