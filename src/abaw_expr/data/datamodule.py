"""Windows of frames (images or cached features) as batches: datasets and the LightningDataModule.

A batch is a dict: ``x`` (B, T, 3, H, W) uint8 images or (B, T, 888) float features,
``labels`` (B, T) int64 with -1 where a frame is unannotated, ``mask`` (B, T) bool, True at
real frames (padding and unreadable images are False), ``video`` (B,) position in the split's
index and ``frames`` (B, T) 0-based frame numbers, so predictions can be put back in place;
training batches of images also carry ``augment`` (B, 7), each window's random draw.

Workers only decode; images become the model's float input on the training device, where the
augmentation runs batched (:meth:`ExpressionDataModule.on_after_batch_transfer`).

Under DDP every process reads its own disjoint share of the windows (:class:`EpochSampler`,
:class:`ShardSampler`): no window is repeated to even the shares out, so a validation frame
is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from abaw_expr.config import DataConfig
from abaw_expr.data.annotations import SPLITS, warn_absent_classes
from abaw_expr.data.augment import Augmentation, prepare_frames
from abaw_expr.data.frame_index import FrameIndex, VideoFrames, build_split_index
from abaw_expr.data.images import read_face
from abaw_expr.data.task_index import build_task_index, choose_tasks, find_tasks, is_mtl
from abaw_expr.data.windows import make_windows
from abaw_expr.errors import InputError


class FrameSource(Protocol):
    def load(
        self, video_pos: int, video: VideoFrames, frames: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs for these frames and a bool tensor saying which could be read."""


class ImageSource:
    """Reads ``cropped_aligned`` JPEGs into a uint8 window.

    A slot whose image is missing or unreadable (``ok`` False) holds a copy of the nearest
    readable frame of the window rather than black, so that the backbone, which runs on every
    slot in training, sees only real faces in its batch statistics.
    """

    def __init__(self, image_size: int = 112):
        self.image_size = image_size

    def load(
        self, video_pos: int, video: VideoFrames, frames: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.zeros(len(frames), 3, self.image_size, self.image_size, dtype=torch.uint8)
        ok = torch.zeros(len(frames), dtype=torch.bool)
        decoded: dict[int, int] = {}  # frame -> slot holding it: padding repeats a frame
        for i, frame in enumerate(frames.tolist()):
            if frame in decoded:
                images[i] = images[decoded[frame]]
                ok[i] = ok[decoded[frame]]
                continue
            face = read_face(video.path(frame), self.image_size) if video.has_image[frame] else None
            decoded[frame] = i
            if face is not None:
                images[i] = face
                ok[i] = True
        if not ok.all() and ok.any():
            good = torch.nonzero(ok).squeeze(1)
            bad = torch.nonzero(~ok).squeeze(1)
            nearest = good[(bad[:, None] - good[None, :]).abs().argmin(dim=1)]
            images[bad] = images[nearest]
        return images, ok


class FeatureSource:
    """Reads 888-d backbone features from a :class:`~abaw_expr.data.feature_cache.FeatureCache`."""

    def __init__(self, cache):
        self.cache = cache

    def load(
        self, video_pos: int, video: VideoFrames, frames: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.cache.read(video.name, frames)
        return torch.from_numpy(features), torch.from_numpy(video.has_image[frames].copy())


def index_windows(
    index: FrameIndex, seq_len: int, stride: int, split_at_gaps: bool, labelled_only: bool
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(video position, frames, mask) windows over each video's frames with a face image.

    ``labelled_only`` keeps only annotated frames (training); otherwise every frame with a face
    is context, labelled or not (validation, inference).
    """
    out = []
    for pos, video in enumerate(index):
        selected = video.usable if labelled_only else video.has_image
        w = make_windows(np.flatnonzero(selected), seq_len, stride, split_at_gaps)
        out.extend((pos, f, m) for f, m in zip(w.frames, w.mask, strict=True))
    return out


def keep_tasks(index: FrameIndex, tasks: Sequence[str]) -> None:
    """Forget the labels of tracks not in ``tracks`` (in place), so that the training windows
    cover the frames of the chosen tracks only."""
    for video in index:
        if "expr" not in tasks:
            video.labels = np.full_like(video.labels, -1)
        if "va" not in tasks:
            video.va = None
        if "au" not in tasks:
            video.au = None


class WindowDataset(Dataset):
    def __init__(
        self,
        index: FrameIndex,
        windows: list[tuple[int, np.ndarray, np.ndarray]],
        source: FrameSource,
        augmentation: Augmentation | None = None,
    ):
        self.index = index
        self.windows = windows
        self.source = source
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """``item`` is a window number, or (window number, seed of its random augmentation)."""
        i, seed = item if isinstance(item, tuple) else (item, None)
        pos, frames, mask = self.windows[i]
        video = self.index.videos[pos]
        x, ok = self.source.load(pos, video, frames)
        extra = {}
        if self.augmentation is not None and seed is not None:
            extra["augment"] = self.augmentation.draw(seed)
        if video.va is not None:
            extra["va"] = torch.from_numpy(video.va[frames])
        if video.au is not None:
            extra["au"] = torch.from_numpy(video.au[frames].astype(np.float32))
        return {
            "x": x,
            "labels": torch.from_numpy(video.labels[frames].astype(np.int64)),
            "mask": torch.from_numpy(mask) & ok,
            "video": torch.tensor(pos),
            "frames": torch.from_numpy(frames),
            **extra,
        }


class EpochSampler(Sampler):
    """Shuffles the training windows with a permutation that depends only on (seed, epoch), and
    hands each window the seed of its augmentation.

    An epoch's data are then the same whatever came before it, in whichever worker a window
    lands: a run resumed from ``last.ckpt`` replays its epochs exactly as an uninterrupted run.
    With ``epoch_of`` (the epoch the Trainer is about to run) the epoch is read when the permutation is
    drawn: Lightning creates a resumed run's first iterator before it calls :meth:`set_epoch`,
    and loader workers start drawing at once. Without it, :meth:`set_epoch` says the epoch,
    and a caller that never does still gets a new permutation every pass.

    With ``world_size`` > 1 (DDP), process ``rank`` takes every ``world_size``-th window of the
    permutation. The last ``length % world_size`` windows of the epoch's permutation are left
    out, rather than others repeated, so the shares are disjoint and equally long (every process
    must take the same number of steps); the permutation changes every epoch, so no window is
    left out for good. A window keeps its augmentation seed whatever the number of processes.
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_of: Callable[[], int] | None = None,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.length, self.seed, self.epoch = length, seed, 0
        self.rank, self.world_size = rank, world_size
        self.epoch_of = epoch_of
        self._told_epoch = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._told_epoch = epoch, True

    def __len__(self) -> int:
        return self.length // self.world_size

    def __iter__(self):
        if self.epoch_of is not None:
            self.epoch, self._told_epoch = self.epoch_of(), True
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.length).tolist()
        seeds = rng.integers(0, 2**62, self.length).tolist()
        if not self._told_epoch:
            self.epoch += 1
        share = slice(self.rank, len(self) * self.world_size, self.world_size)
        return iter(zip(order[share], seeds[share], strict=True))


class ShardSampler(Sampler):
    """Evaluation order, sharded: process ``rank`` takes windows rank, rank + world_size, ...

    Shares differ in length by at most one window; none is repeated to even them out (as
    ``DistributedSampler`` does), so every frame is counted exactly once across processes.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.length, self.rank, self.world_size = length, rank, world_size

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))


class ExpressionDataModule(L.LightningDataModule):
    """Train_Set and Validation_Set of an ABAW annotation folder, as images or cached features.

    With ``features_dir`` (from ``abaw-expr extract``) the backbone is skipped and the windows
    read 888-d features; otherwise JPEGs from ``images_dir``.
    """

    def __init__(
        self,
        config: DataConfig,
        annotations_dir: Path | str,
        images_dir: Path | str | None = None,
        features_dir: Path | str | None = None,
        seed: int = 0,
        tasks: Sequence[str] | None = None,
    ):
        super().__init__()
        self.tasks = tasks  # ABAW tracks to read; None: every track found
        self.seed = seed  # of the training windows' order and augmentation, per epoch
        if images_dir is None and features_dir is None:
            raise ValueError("give images_dir or features_dir")
        self.config = config
        self.annotations_dir = Path(annotations_dir)
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.features_dir = Path(features_dir) if features_dir is not None else None
        self.indexes: dict[str, FrameIndex] = {}
        self.chosen_tasks: list[str] = []  # the tracks read, in ABAW's order, once indexed

    def prepare_data(self) -> None:
        # Build (and cache) the frame index once, on one process, before DDP ranks read it.
        self._index_all()

    def _index_all(self) -> None:
        if self.indexes:
            return
        if self.features_dir is not None:
            from abaw_expr.data.feature_cache import cached_tasks, open_split_index

            for split in SPLITS:
                self.indexes[split] = open_split_index(self.features_dir / split)
            held = cached_tasks(self.indexes["Train_Set"])
            self.chosen_tasks = list(self.tasks) if self.tasks is not None else held
            missing = [t for t in self.chosen_tasks if t not in held]
            if missing:
                raise InputError(
                    f"this feature cache holds no {missing[0]} labels (it holds "
                    f"{', '.join(held)}); extract it from annotations with that track",
                    self.features_dir,
                )
            if self.chosen_tasks != held:  # what is not trained is not annotated here
                for index in self.indexes.values():
                    keep_tasks(index, self.chosen_tasks)
            return
        chosen = choose_tasks(find_tasks(self.annotations_dir), self.tasks, self.annotations_dir)
        self.chosen_tasks = list(chosen)
        if list(chosen) != ["expr"] or is_mtl(chosen):
            for split in chosen.values():
                if len(split) < len(SPLITS):
                    break
            else:
                self.indexes = build_task_index(self.images_dir, chosen)
                return
            missing = [s for s in SPLITS if s not in next(iter(chosen.values()))]
            raise InputError(f"no {' or '.join(missing)} annotations here", self.annotations_dir)
        for split, split_dir in chosen["expr"].items():
            self.indexes[split] = build_split_index(self.images_dir, split_dir)
        train_names = {v.name for v in self.indexes.get("Train_Set", [])}
        both = sorted(train_names & {v.name for v in self.indexes.get("Validation_Set", [])})
        if both:
            raise InputError(
                f"video {both[0]!r} is in both Train_Set and Validation_Set ({len(both)} such videos)",
                self.annotations_dir,
            )
        missing = [s for s in SPLITS if s not in self.indexes]
        if missing:
            raise InputError(f"missing split folder(s) {', '.join(missing)}", self.annotations_dir)

    def _source(self, split: str) -> FrameSource:
        if self.features_dir is not None:
            from abaw_expr.data.feature_cache import FeatureCache

            return FeatureSource(FeatureCache(self.features_dir / split))
        return ImageSource(self.config.image_size)

    def setup(self, stage: str | None = None) -> None:
        self._index_all()
        c = self.config
        train_index, val_index = self.indexes["Train_Set"], self.indexes["Validation_Set"]
        for split, index in self.indexes.items():
            if "expr" not in self.chosen_tasks:
                break
            labels = [v.labels[v.usable & (v.labels >= 0)] for v in index]
            warn_absent_classes(np.concatenate(labels) if labels else np.zeros(0), split)
        self.train_set = WindowDataset(
            train_index,
            index_windows(train_index, c.seq_len, c.stride, c.split_at_gaps, labelled_only=True),
            self._source("Train_Set"),
            None
            if self.features_dir is not None
            else Augmentation.from_config(c.hflip, c.color_jitter),
        )
        # Validation during training: non-overlapping windows over every frame with a face.
        self.val_set = WindowDataset(
            val_index,
            index_windows(val_index, c.seq_len, c.seq_len, c.split_at_gaps, labelled_only=False),
            self._source("Validation_Set"),
        )

    def _shard(self) -> tuple[int, int]:
        """(rank, world size) of this process; (0, 1) outside a Trainer."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, dataset: Dataset, sampler: Sampler) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._shard()
        trainer = self.trainer
        # The epoch Lightning is about to run, as it passes to set_epoch (current_epoch lags
        # behind it when a run resumes from a checkpoint written at an epoch's end).
        epoch_of = (
            (lambda: trainer.fit_loop.epoch_progress.current.processed)
            if trainer is not None
            else None
        )
        sampler = EpochSampler(len(self.train_set), self.seed, rank, world, epoch_of)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._shard()
        return self._loader(self.val_set, ShardSampler(len(self.val_set), rank, world))

    def on_before_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        # The augmentation draw becomes host numbers before the transfer, so that applying it
        # on the device never waits for the device (a device-to-host read would).
        if "augment" in batch:
            batch["augment"] = batch["augment"].tolist()
        return batch

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 images become the model's float input here, on the training device."""
        if batch["x"].dtype == torch.uint8:
            batch["x"] = prepare_frames(batch["x"], batch.pop("augment", None))
        return batch
