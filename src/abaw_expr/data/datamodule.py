"""Windows of frames (images or cached features) as batches: datasets and the LightningDataModule.

A batch is a dict: ``x`` (B, T, 3, H, W) images or (B, T, 888) features, ``labels`` (B, T)
int64 with -1 where a frame is unannotated, ``mask`` (B, T) bool, True at real frames (padding
and unreadable images are False), ``video`` (B,) position in the split's index and ``frames``
(B, T) 0-based frame numbers, so predictions can be put back in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import DataConfig
from ..metrics import warn_absent_classes
from .annotations import SPLITS, find_splits
from .frame_index import FrameIndex, VideoFrames, build_split_index
from .images import eval_transform, read_face, train_transform
from .windows import make_windows


class FrameSource(Protocol):
    def load(
        self, video_pos: int, video: VideoFrames, frames: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs for these frames and a bool tensor saying which could be read."""


class ImageSource:
    """Reads ``cropped_aligned`` JPEGs; a window is transformed as one (same random draw)."""

    def __init__(self, image_size: int = 112, transform=None):
        self.image_size = image_size
        self.transform = transform or eval_transform()

    def load(
        self, video_pos: int, video: VideoFrames, frames: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.zeros(len(frames), 3, self.image_size, self.image_size, dtype=torch.uint8)
        ok = torch.zeros(len(frames), dtype=torch.bool)
        cache: dict[int, torch.Tensor | None] = {}
        for i, frame in enumerate(frames.tolist()):
            if frame not in cache:  # padding repeats a frame: decode it once
                cache[frame] = (
                    read_face(video.path(frame), self.image_size)
                    if video.has_image[frame]
                    else None
                )
            if cache[frame] is not None:
                images[i] = cache[frame]
                ok[i] = True
        return self.transform(images), ok


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


class WindowDataset(Dataset):
    def __init__(
        self,
        index: FrameIndex,
        windows: list[tuple[int, np.ndarray, np.ndarray]],
        source: FrameSource,
    ):
        self.index = index
        self.windows = windows
        self.source = source

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """``item`` is a window number, or (window number, seed of its random augmentation)."""
        i, seed = item if isinstance(item, tuple) else (item, None)
        pos, frames, mask = self.windows[i]
        video = self.index.videos[pos]
        if seed is None:
            x, ok = self.source.load(pos, video, frames)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                x, ok = self.source.load(pos, video, frames)
        return {
            "x": x,
            "labels": torch.from_numpy(video.labels[frames].astype(np.int64)),
            "mask": torch.from_numpy(mask) & ok,
            "video": torch.tensor(pos),
            "frames": torch.from_numpy(frames),
        }


class EpochSampler(Sampler):
    """Shuffles the training windows with a permutation that depends only on (seed, epoch), and
    hands each window the seed of its augmentation.

    An epoch's data are then the same whatever came before it, in whichever worker a window
    lands: a run resumed from ``last.ckpt`` replays its epochs exactly as an uninterrupted run.
    Lightning calls :meth:`set_epoch`; a wrapper that does not (as in DDP) still gets a new
    permutation every pass.
    """

    def __init__(self, length: int, seed: int = 0):
        self.length, self.seed, self.epoch = length, seed, 0
        self._told_epoch = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._told_epoch = epoch, True

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.length).tolist()
        seeds = rng.integers(0, 2**62, self.length).tolist()
        if not self._told_epoch:
            self.epoch += 1
        return iter(zip(order, seeds, strict=True))


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
    ):
        super().__init__()
        self.seed = seed  # of the training windows' order and augmentation, per epoch
        if images_dir is None and features_dir is None:
            raise ValueError("give images_dir or features_dir")
        self.config = config
        self.annotations_dir = Path(annotations_dir)
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.features_dir = Path(features_dir) if features_dir is not None else None
        self.indexes: dict[str, FrameIndex] = {}

    def prepare_data(self) -> None:
        # Build (and cache) the frame index once, on one process, before DDP ranks read it.
        self._index_all()

    def _index_all(self) -> None:
        if self.indexes:
            return
        if self.features_dir is not None:
            from .feature_cache import open_split_index

            for split in SPLITS:
                self.indexes[split] = open_split_index(self.features_dir / split)
            return
        for split, split_dir in find_splits(self.annotations_dir).items():
            self.indexes[split] = build_split_index(self.images_dir, split_dir)
        train_names = {v.name for v in self.indexes.get("Train_Set", [])}
        both = sorted(train_names & {v.name for v in self.indexes.get("Validation_Set", [])})
        if both:
            from ..errors import InputError

            raise InputError(
                f"video {both[0]!r} is in both Train_Set and Validation_Set ({len(both)} such videos)",
                self.annotations_dir,
            )
        missing = [s for s in SPLITS if s not in self.indexes]
        if missing:
            from ..errors import InputError

            raise InputError(f"missing split folder(s) {', '.join(missing)}", self.annotations_dir)

    def _source(self, split: str, train: bool) -> FrameSource:
        if self.features_dir is not None:
            from .feature_cache import FeatureCache

            return FeatureSource(FeatureCache(self.features_dir / split))
        c = self.config
        transform = train_transform(c.hflip, c.color_jitter) if train else eval_transform()
        return ImageSource(c.image_size, transform)

    def setup(self, stage: str | None = None) -> None:
        self._index_all()
        c = self.config
        train_index, val_index = self.indexes["Train_Set"], self.indexes["Validation_Set"]
        for split, index in self.indexes.items():
            labels = [v.labels[v.usable] for v in index]
            warn_absent_classes(np.concatenate(labels) if labels else np.zeros(0), split)
        self.train_set = WindowDataset(
            train_index,
            index_windows(train_index, c.seq_len, c.stride, c.split_at_gaps, labelled_only=True),
            self._source("Train_Set", True),
        )
        # Validation during training: non-overlapping windows over every frame with a face.
        self.val_set = WindowDataset(
            val_index,
            index_windows(val_index, c.seq_len, c.seq_len, c.split_at_gaps, labelled_only=False),
            self._source("Validation_Set", False),
        )

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=EpochSampler(len(dataset), self.seed) if shuffle else None,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
