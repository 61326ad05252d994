"""Training throughput of the paper's recipe on a GPU, side by side, as one JSON object.

    PYTHONPATH=src python benchmarks/gpu_train.py [--videos 40] [--workers 14] [--out DIR]
    PYTHONPATH=src python benchmarks/gpu_train.py --device cpu --quick   # a smoke run, no GPU

On a generated sample (``--videos`` x 300 frames of 112x112 faces), with random weights:

- ``decode_fps``: one process decoding the sample's JPEGs with Pillow;
- ``loader_fps``: the training DataLoader alone (``--workers`` processes, uint8 windows);
- ``step``: the training step alone, per setting: 16 windows of 64 uint8 faces already on the
  device, through the same datamodule hook (augmentation on the device) and LightningModule
  (``training_step``, backward, the fused optimiser), for fp32 / bf16-mixed, NCHW /
  channels-last, eager / compiled backbone: frames/s, peak memory, the loss of the last step;
- ``sync_warnings``: host synchronisations that ``torch.cuda.set_sync_debug_mode("warn")``
  reported during steps of the default setting (none is the aim);
- ``end_to_end``: ``abaw-expr train`` itself (loader, Lightning loop, validation excluded),
  frames/s over the second epoch, for the default setting and the fastest step setting.

Everything is written to ``--out``/gpu_train.json as well as printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from abaw_expr.config import Config
from abaw_expr.data.datamodule import ExpressionDataModule
from abaw_expr.data.images import read_face
from abaw_expr.synthetic.sample import write_sample
from abaw_expr.training.loop import train
from abaw_expr.training.module import ExpressionModule


class EpochClock(L.Callback):
    def __init__(self):
        self.seconds, self.frames = [], []

    def on_train_epoch_start(self, trainer, module):
        self.start, self.count = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.count += int(batch["mask"].numel())
        self.last = time.perf_counter()  # validation, which follows the last batch, not counted

    def on_train_epoch_end(self, trainer, module):
        self.seconds.append(self.last - self.start)
        self.frames.append(self.count)


def _config(args, precision: str, channels_last: bool, compile_backbone: bool) -> Config:
    config = Config()
    config.model.backbone_weights = "none"
    config.optim.lr = args.lr  # random weights diverge at the paper's 1e-3
    config.trainer.precision = precision
    config.trainer.channels_last = channels_last
    config.trainer.compile = compile_backbone
    config.data.num_workers = args.workers
    if args.quick:
        config.data.batch_size, config.data.seq_len = 2, 16
    return config


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_alone(args, dm, config: Config, device: torch.device, steps: int) -> dict:
    """The step's own ceiling: windows already on the device, no loader, no Lightning loop."""
    torch.manual_seed(0)
    module = ExpressionModule(config.to_dict()).to(device)
    module.setup("fit")
    module.train()
    optimizer = module.configure_optimizers()["optimizer"]
    d = config.data
    shape = (d.batch_size, d.seq_len, 3, d.image_size, d.image_size)
    x = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    labels = torch.randint(0, 8, shape[:2], device=device)
    mask = torch.ones(shape[:2], dtype=torch.bool, device=device)
    draws = torch.stack([dm.train_set.augmentation.draw(s) for s in range(d.batch_size)])
    bf16 = config.trainer.precision.startswith("bf16")

    def one_step(i: int) -> torch.Tensor:
        batch = {"x": x, "labels": labels, "mask": mask, "augment": draws.clone()}
        batch = dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = module.training_step(batch, i)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        start = time.perf_counter()
        for i in range(3):  # warm-up: cuDNN autotuning, compilation
            one_step(i)
        _sync(device)
        warmup_s = time.perf_counter() - start
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for i in range(steps):
            loss = one_step(i)
        _sync(device)
        seconds = time.perf_counter() - start
        result = {
            "fps": round(steps * x.shape[0] * x.shape[1] / seconds),
            "warmup_s": round(warmup_s, 1),
            "last_loss": float(loss),
        }
        if device.type == "cuda":
            result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                for i in range(3):
                    one_step(i)
                torch.cuda.set_sync_debug_mode(0)
                _sync(device)
            syncs = [
                str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message)
            ]
            result["sync_warnings"] = len(syncs)
            result["sync_examples"] = sorted(set(syncs))[:5]
    return result


def end_to_end(args, root: Path, config: Config, name: str) -> dict:
    images, annotations = root / "sample" / "cropped_aligned", root / "sample" / "annotations"
    config.trainer.epochs = 2
    clock = EpochClock()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = {}
    try:
        train(config, annotations, root / f"run-{name}", images_dir=images,
              enable_progress_bar=False, callbacks=[clock], overwrite=True)  # fmt: skip
    except RuntimeError as err:  # a NaN loss: say where, keep the timings so far
        result["stopped"] = str(err).splitlines()[0]
    result["epoch_s"] = [round(s, 1) for s in clock.seconds]
    if clock.seconds:
        result["fps_last_epoch"] = round(clock.frames[-1] / clock.seconds[-1])
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--workers", type=int, default=14)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per step setting")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_train"))
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and data: a smoke run")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled settings")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = args.out
    frames = 100 if args.quick else 300
    write_sample(root / "sample", train_videos=args.videos, val_videos=2, frames=frames)
    images, annotations = root / "sample" / "cropped_aligned", root / "sample" / "annotations"
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "workers": args.workers,
        "videos": args.videos,
    }

    config = _config(args, "bf16-mixed" if device.type == "cuda" else "32-true", False, False)
    dm = ExpressionDataModule(config.data, annotations, images)
    dm.setup("fit")
    paths = [v.path(int(f)) for v in dm.indexes["Train_Set"] for f in np.flatnonzero(v.usable)]
    start = time.perf_counter()
    for p in paths[:3000]:
        read_face(p, 112)
    result["decode_fps"] = round(min(len(paths), 3000) / (time.perf_counter() - start))
    loader = dm.train_dataloader()
    for _ in range(2):  # the second pass: workers started, page cache warm
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += int(batch["x"].shape[0] * batch["x"].shape[1])
    result["loader_fps"] = round(count / (time.perf_counter() - start))

    precisions = ["32-true", "bf16-mixed"] if device.type == "cuda" else ["32-true"]
    compiles = [False] if args.no_compile else [False, True]
    result["step"] = {}
    for precision, channels_last, compiled in itertools.product(
        precisions, [False, True], compiles
    ):
        name = f"{precision}/{'channels_last' if channels_last else 'nchw'}/{'compiled' if compiled else 'eager'}"
        try:
            result["step"][name] = step_alone(
                args, dm, _config(args, precision, channels_last, compiled), device, args.steps
            )
        except Exception as err:  # one setting failing must not lose the others' figures
            result["step"][name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
        print(name, result["step"][name], flush=True)

    ok = {k: v for k, v in result["step"].items() if "fps" in v}
    default = f"{precisions[-1]}/nchw/eager"
    best = max(ok, key=lambda k: ok[k]["fps"]) if ok else default
    result["end_to_end"] = {}
    for name in dict.fromkeys([default, best]):
        precision, layout, mode = name.split("/")
        config = _config(args, precision, layout == "channels_last", mode == "compiled")
        result["end_to_end"][name] = end_to_end(args, root, config, name.replace("/", "-"))
        print(name, result["end_to_end"][name], flush=True)

    root.mkdir(parents=True, exist_ok=True)
    (root / "gpu_train.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
