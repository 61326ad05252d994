"""Backbone features computed once and stored: the cache behind head-only training.

One folder per split::

    CACHE/<split>/index.npz     names, frame counts, row offsets, labels, has_image, backbone id
    CACHE/<split>/features.f16  float16 rows of 888, one row per video frame (zeros where no face)
    CACHE/<split>/done.npy      which videos are complete

``features.f16`` is memory-mapped, so training reads only what it needs and memory does not
grow with the data set. ``done.npy`` is rewritten atomically after each video's rows are
flushed: a killed extraction resumes at the first video not marked done, and a video is never
read as done before its rows are on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.frame_index import FrameIndex, VideoFrames
from .data.images import eval_transform, read_face
from .errors import InputError
from .model.engine import BackboneRunner
from .writers import atomic_write

log = logging.getLogger(__name__)

FEATURE_DIM = 888


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, write)


def _save_npz(path: Path, **arrays) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)


def open_split_index(split_dir: Path | str) -> FrameIndex:
    """The frame index a cache folder was extracted from (labels included)."""
    split_dir = Path(split_dir)
    path = split_dir / "index.npz"
    if not path.is_file():
        raise InputError(
            "not a feature cache folder (no index.npz); run 'abaw-expr extract' first", split_dir
        )
    with np.load(path, allow_pickle=False) as data:
        offsets = data["offsets"]
        images_dir = Path(str(data["images_dir"]))
        return FrameIndex(
            [
                VideoFrames(
                    str(n),
                    images_dir / str(n),
                    data["labels"][a : a + k].copy(),
                    data["has_image"][a : a + k].copy(),
                    split_dir.name,
                )
                for n, a, k in zip(data["names"], offsets, data["lengths"], strict=True)
            ]
        )


class FeatureCache:
    """Read side of one split's cache."""

    def __init__(self, split_dir: Path | str):
        self.split_dir = Path(split_dir)
        with np.load(self.split_dir / "index.npz", allow_pickle=False) as data:
            self.offsets = {
                str(n): int(o) for n, o in zip(data["names"], data["offsets"], strict=True)
            }
            self.total = int(data["lengths"].sum())
            self.backbone = str(data["backbone"])
        done = np.load(self.split_dir / "done.npy")
        if not done.all():
            raise InputError(
                f"feature cache incomplete ({int(done.sum())}/{len(done)} videos); rerun 'abaw-expr extract' to finish it",
                self.split_dir,
            )
        self._rows: np.memmap | None = None

    @property
    def rows(self) -> np.memmap:
        # Opened lazily so that each DataLoader worker maps the file itself.
        if self._rows is None:
            self._rows = np.memmap(
                self.split_dir / "features.f16",
                dtype=np.float16,
                mode="r",
                shape=(self.total, FEATURE_DIM),
            )
        return self._rows

    def read(self, video: str, frames: np.ndarray) -> np.ndarray:
        return self.rows[self.offsets[video] + np.asarray(frames)].astype(np.float32)


class FrameImages(Dataset):
    """Single face images for per-frame backbone passes: (image, row id, video position, ok)."""

    def __init__(self, items: list[tuple[int, int, Path]], image_size: int):
        self.items = items
        self.image_size = image_size
        self.transform = eval_transform()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        row, video_pos, path = self.items[i]
        image = read_face(path, self.image_size)
        ok = image is not None
        if image is None:
            image = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
        return self.transform(image), row, video_pos, ok


@torch.inference_mode()
def extract_split(
    index: FrameIndex,
    backbone: torch.nn.Module,
    out_dir: Path | str,
    backbone_id: str,
    images_dir: Path | str,
    batch_size: int = 128,
    num_workers: int = 2,
    image_size: int = 112,
    device: str | torch.device = "cpu",
    engine: str = "auto",
) -> FeatureCache:
    """Run ``backbone`` over every face image of ``index`` and store the features (resumable)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lengths = np.array([v.num_frames for v in index], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    names = np.array([v.name for v in index], dtype=str)
    total = int(lengths.sum())
    index_file, rows_file, done_file = (
        out_dir / "index.npz",
        out_dir / "features.f16",
        out_dir / "done.npy",
    )

    if index_file.is_file() and done_file.is_file() and rows_file.is_file():
        with np.load(index_file, allow_pickle=False) as old:
            same = np.array_equal(old["names"], names) and np.array_equal(old["lengths"], lengths)
            old_backbone = str(old["backbone"])
        if not same:
            raise InputError("holds a cache of another data set; choose an empty folder", out_dir)
        if old_backbone != backbone_id:
            raise InputError(
                f"holds features of backbone {old_backbone!r}, not {backbone_id!r}; choose an empty folder",
                out_dir,
            )
        done = np.load(done_file)
    else:
        rows = np.memmap(rows_file, dtype=np.float16, mode="w+", shape=(max(total, 1), FEATURE_DIM))
        del rows
        done = np.zeros(len(index), dtype=bool)
        _save_npz(
            index_file,
            names=names,
            lengths=lengths,
            offsets=offsets,
            labels=np.concatenate([v.labels for v in index]),
            has_image=np.concatenate([v.has_image for v in index]),
            backbone=np.array(backbone_id),
            images_dir=np.array(str(Path(images_dir).resolve())),
        )
        _save_npy(done_file, done)

    pending = [pos for pos in range(len(index)) if not done[pos]]
    if pending:
        log.info("extracting %s: %d of %d videos to do", out_dir.name, len(pending), len(index))
    items = [
        (int(offsets[pos] + f), pos, index.videos[pos].path(int(f)))
        for pos in pending
        for f in np.flatnonzero(index.videos[pos].has_image)
    ]
    remaining = {pos: int(index.videos[pos].has_image.sum()) for pos in pending}
    rows = np.memmap(rows_file, dtype=np.float16, mode="r+", shape=(max(total, 1), FEATURE_DIM))

    unreadable: list[int] = []

    def finish(pos: int) -> None:
        rows.flush()
        if unreadable:  # images that failed to decode become frames without a face
            with np.load(index_file, allow_pickle=False) as old:
                arrays = dict(old)
            arrays["has_image"][unreadable] = False
            _save_npz(index_file, **arrays)
            unreadable.clear()
        done[pos] = True
        _save_npy(done_file, done)

    for pos in [p for p, n in remaining.items() if n == 0]:
        finish(pos)
    # float32 on CUDA too: a cache is read by many trainings
    runner = BackboneRunner(backbone, device, engine, batch_size, len(items), cuda_bf16=False)
    loader = DataLoader(
        FrameImages(items, image_size), batch_size=batch_size, num_workers=num_workers
    )
    for images, row_ids, video_pos, ok in loader:
        features = runner(images).cpu()
        features[~ok] = 0
        rows[row_ids.numpy()] = features.numpy().astype(np.float16)
        unreadable.extend(row_ids[~ok].tolist())
        for pos in video_pos.tolist():
            remaining[pos] -= 1
            if remaining[pos] == 0:
                finish(pos)
    rows.flush()
    return FeatureCache(out_dir)


def backbone_id(weights: str) -> str:
    """Identity of a backbone's weights, so a cache is never resumed with other features."""
    path = Path(weights).expanduser()
    if path.is_file():
        import hashlib

        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"file:{digest.hexdigest()[:16]}"
    return weights.strip().lower()


def extract(
    images_dir: Path | str,
    annotations_dir: Path | str,
    out_dir: Path | str,
    weights: str = "imagenet",
    batch_size: int = 128,
    device: str = "auto",
    num_workers: int = 2,
    image_size: int = 112,
    engine: str = "auto",
) -> dict[str, FeatureCache]:
    """Extract features of every split under ``annotations_dir`` into ``out_dir/<split>/``."""
    from .data.annotations import find_splits
    from .data.frame_index import build_split_index
    from .model.backbone import build_backbone

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    backbone = build_backbone(weights, frozen_stages=5)
    caches = {}
    for split, split_dir in find_splits(annotations_dir).items():
        index = build_split_index(images_dir, split_dir)
        caches[split] = extract_split(
            index,
            backbone,
            Path(out_dir) / split,
            backbone_id(weights),
            images_dir,
            batch_size,
            num_workers,
            image_size,
            device,
            engine,
        )
    return caches
