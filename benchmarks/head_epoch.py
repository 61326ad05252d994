"""One epoch of head-only training over an Aff-Wild2-sized feature cache, as ``train --features``
runs it (Lightning, memory-mapped float16 features, the paper's windows and batch).

    python benchmarks/head_epoch.py [--frames 2600000] [--dir DIR]

Writes a synthetic cache of ``--frames`` training frames (random float16 features, random
labels, videos of 3,000 frames; about 4.6 GB for 2.6 M frames) and 30,000 validation frames
into ``--dir`` (default: a temporary folder beside this script), then trains the combine head
for one epoch and prints the epoch's wall time, frames per second and memory: the peak RSS
of the training process and its anonymous (not file-backed) part at the end, which is what
grows with a data set loaded into memory and does not grow with a memory-mapped one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from safetensors.torch import save_file

from abaw_expr.config import Config
from abaw_expr.data.feature_cache import FEATURE_DIM, backbone_id
from abaw_expr.model.backbone import build_backbone
from abaw_expr.training.loop import train

VIDEO_FRAMES = 3000


def write_cache(split_dir: Path, frames: int, backbone: str, seed: int) -> None:
    split_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    lengths = np.full(frames // VIDEO_FRAMES, VIDEO_FRAMES, dtype=np.int64)
    if frames % VIDEO_FRAMES:
        lengths = np.append(lengths, frames % VIDEO_FRAMES)
    rows = np.memmap(split_dir / "features.f16", np.float16, "w+", shape=(frames, FEATURE_DIM))
    for start in range(0, frames, 100_000):
        stop = min(start + 100_000, frames)
        rows[start:stop] = rng.standard_normal((stop - start, FEATURE_DIM), np.float32)
    rows.flush()
    del rows
    np.savez(
        split_dir / "index.npz",
        names=np.array([f"video_{i:05d}" for i in range(len(lengths))]),
        lengths=lengths,
        offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        labels=rng.integers(0, 8, frames).astype(np.int8),
        has_image=np.ones(frames, bool),
        backbone=np.array(backbone),
        images_dir=np.array("synthetic"),
    )
    np.save(split_dir / "done.npy", np.ones(len(lengths), bool))


def memory_mb() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(status[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")}


class EpochClock(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.start
        self.memory = memory_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2_600_000)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="head-epoch-", dir=args.dir) as tmp:
        root = Path(tmp)
        weights = root / "backbone.safetensors"
        save_file(
            {k: v.contiguous() for k, v in build_backbone("none").state_dict().items()},
            str(weights),
        )
        start = time.perf_counter()
        write_cache(root / "cache" / "Train_Set", args.frames, backbone_id(str(weights)), 0)
        write_cache(root / "cache" / "Validation_Set", 30_000, backbone_id(str(weights)), 1)
        written = time.perf_counter() - start
        config = Config()
        config.model.backbone_weights = str(weights)
        config.trainer.epochs = 1
        config.data.num_workers = args.workers
        clock = EpochClock()
        train(config, root / "cache", root / "run", features_dir=root / "cache",
              enable_progress_bar=False, callbacks=[clock])  # fmt: skip
    print(
        json.dumps(
            {
                "train_frames": args.frames,
                "cache_write_s": round(written, 1),
                "epoch_s": round(clock.seconds, 1),
                "epoch_frames_per_s": round(args.frames / clock.seconds),
                "peak_rss_mb": round(clock.memory["VmHWM"]),
                "anon_rss_mb_at_epoch_end": round(clock.memory["RssAnon"]),
                "file_rss_mb_at_epoch_end": round(clock.memory["RssFile"]),
                "workers": args.workers,
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
