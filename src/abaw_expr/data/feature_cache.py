"""The feature cache on disk: backbone features computed once, read by head-only training.

One folder per split::

    CACHE/<split>/index.npz     names, frame counts, row offsets, labels, has_image, backbone id,
                                feature width (absent: 888), seed of a random backbone (-1: none)
    CACHE/<split>/features.f16  float16 rows of the backbone's width (888 for RegNetY), one row per
                                video frame (zeros where no face)
    CACHE/<split>/done.npy      which videos are complete

``features.f16`` is memory-mapped, so training reads only what it needs and memory does not
grow with the data set. ``done.npy`` is rewritten atomically after each video's rows are
flushed: a killed extraction resumes at the first video not marked done, and a video is never
read as done before its rows are on disk.

This module is the format (reading it, and :class:`CacheWriter` for the one who fills it);
running the backbone to fill it is :mod:`abaw_expr.training.extraction`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from abaw_expr.data.frame_index import FrameIndex, VideoFrames
from abaw_expr.errors import InputError
from abaw_expr.writers import atomic_write

FEATURE_DIM = 888  # RegNetY-1.6GF's pooled feature; the model checks it matches
# The backbone id of a cache made since issue 36: "<backbone> sha256:<digest of its weights as
# loaded>" (abaw_expr.model.backbones.backbone_identity); before, the weights' name or file.


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
        va, au = data.get("va"), data.get("au")  # caches of other tracks (issue 20) hold these
        return FrameIndex(
            [
                VideoFrames(
                    str(n),
                    images_dir / str(n),
                    data["labels"][a : a + k].copy(),
                    data["has_image"][a : a + k].copy(),
                    split_dir.name,
                    va=None if va is None else va[a : a + k].copy(),
                    au=None if au is None else au[a : a + k].copy(),
                )
                for n, a, k in zip(data["names"], offsets, data["lengths"], strict=True)
            ]
        )


def cached_tasks(index: FrameIndex) -> list[str]:
    """The tracks whose labels a cache's index holds: ``expr`` unless it holds only others."""
    videos = index.videos
    held = []
    if not videos or not any(v.va is not None or v.au is not None for v in videos):
        return ["expr"]
    if any((v.labels >= 0).any() for v in videos):
        held.append("expr")
    held += [t for t in ("va", "au") if getattr(videos[0], t) is not None]
    return held


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
            self.feature_dim = int(data["dim"]) if "dim" in data else FEATURE_DIM
            self.backbone_seed = int(data["backbone_seed"]) if "backbone_seed" in data else -1
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
                shape=(self.total, self.feature_dim),
            )
        return self._rows

    def read(self, video: str, frames: np.ndarray) -> np.ndarray:
        return self.rows[self.offsets[video] + np.asarray(frames)].astype(np.float32)


class CacheWriter:
    """Write side of one split's cache: creates the folder, or reopens it to resume.

    ``pending`` lists the video positions still to do; rows are written with :meth:`write`,
    and a video is committed with :meth:`finish` once all its rows are in.
    """

    def __init__(
        self,
        out_dir: Path | str,
        index: FrameIndex,
        backbone_id: str,
        images_dir,
        feature_dim: int = FEATURE_DIM,
        backbone_seed: int = -1,
    ):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lengths = np.array([v.num_frames for v in index], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        names = np.array([v.name for v in index], dtype=str)
        total = int(lengths.sum())
        self.index_file = self.out_dir / "index.npz"
        rows_file, self.done_file = self.out_dir / "features.f16", self.out_dir / "done.npy"
        if self.index_file.is_file() and self.done_file.is_file() and rows_file.is_file():
            with np.load(self.index_file, allow_pickle=False) as old:
                same = np.array_equal(old["names"], names) and np.array_equal(
                    old["lengths"], lengths
                )
                old_backbone = str(old["backbone"])
                old_dim = int(old["dim"]) if "dim" in old else FEATURE_DIM
            if not same:
                raise InputError(
                    "holds a cache of another data set; choose an empty folder", self.out_dir
                )
            if old_backbone != backbone_id or old_dim != feature_dim:
                raise InputError(
                    f"holds features of backbone {old_backbone!r}, not {backbone_id!r} (another "
                    "backbone or other weights); choose an empty folder",
                    self.out_dir,
                )
            self.done = np.load(self.done_file)
        else:
            rows = np.memmap(
                rows_file, dtype=np.float16, mode="w+", shape=(max(total, 1), feature_dim)
            )
            del rows
            self.done = np.zeros(len(index), dtype=bool)
            _save_npz(
                self.index_file,
                names=names,
                lengths=lengths,
                offsets=self.offsets,
                labels=np.concatenate([v.labels for v in index]),
                has_image=np.concatenate([v.has_image for v in index]),
                **{
                    task: np.concatenate([getattr(v, task) for v in index])
                    for task in ("va", "au")
                    if index.videos and getattr(index.videos[0], task) is not None
                },
                backbone=np.array(backbone_id),
                dim=np.array(feature_dim),
                backbone_seed=np.array(backbone_seed),
                images_dir=np.array(str(Path(images_dir).resolve())),
            )
            _save_npy(self.done_file, self.done)
        self.pending = [pos for pos in range(len(index)) if not self.done[pos]]
        self.rows = np.memmap(
            rows_file, dtype=np.float16, mode="r+", shape=(max(total, 1), feature_dim)
        )
        self._unreadable: list[int] = []

    def write(self, row_ids: np.ndarray, features: np.ndarray, ok: np.ndarray) -> None:
        """Rows ``row_ids`` (global) get ``features``; rows whose image failed (``~ok``) are
        zeros and become frames without a face when their video is finished."""
        features = np.where(ok[:, None], features, 0)
        self.rows[row_ids] = features.astype(np.float16)
        self._unreadable.extend(row_ids[~ok].tolist())

    def finish(self, pos: int) -> None:
        """Video ``pos`` is complete: flush its rows, then mark it done."""
        self.rows.flush()
        if self._unreadable:  # images that failed to decode become frames without a face
            with np.load(self.index_file, allow_pickle=False) as old:
                arrays = dict(old)
            arrays["has_image"][self._unreadable] = False
            _save_npz(self.index_file, **arrays)
            self._unreadable.clear()
        self.done[pos] = True
        _save_npy(self.done_file, self.done)


def backbone_id(weights: str) -> str:
    """The identity caches recorded before issue 36 (the weights' name, or the file's hash);
    still what the synthetic probes record, and what a cache of that time is checked by."""
    path = Path(weights).expanduser()
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"file:{digest.hexdigest()[:16]}"
    return weights.strip().lower()
