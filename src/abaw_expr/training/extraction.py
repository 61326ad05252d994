"""``abaw-expr extract``: run the backbone once over every face and fill the feature cache.

The cache's format (and its reader, used by head-only training) is
:mod:`abaw_expr.data.feature_cache`; this module is the part that runs the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from abaw_expr.data.feature_cache import CacheWriter, FeatureCache
from abaw_expr.data.frame_index import FrameIndex
from abaw_expr.data.images import FrameImages
from abaw_expr.inference.engine import BackboneRunner

log = logging.getLogger(__name__)


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
    runner: BackboneRunner | None = None,
    backbone_seed: int = -1,
    bar=None,
) -> FeatureCache:
    """Run ``backbone`` over every face image of ``index`` and store the features (resumable).

    ``runner``: a runner of ``backbone`` to reuse (one compiled graph for every split);
    ``backbone_seed``: the seed a random backbone was drawn with, recorded for training;
    ``bar``: a tqdm bar to advance by the frames done."""
    from abaw_expr.model.backbones import backbone_width

    writer = CacheWriter(
        out_dir, index, backbone_id, images_dir, backbone_width(backbone), backbone_seed
    )
    if writer.pending:
        log.info(
            "extracting %s: %d of %d videos to do",
            writer.out_dir.name,
            len(writer.pending),
            len(index),
        )
    items = [
        (int(writer.offsets[pos] + f), pos, index.videos[pos].path(int(f)))
        for pos in writer.pending
        for f in np.flatnonzero(index.videos[pos].has_image)
    ]
    remaining = {pos: int(index.videos[pos].has_image.sum()) for pos in writer.pending}
    if bar is not None:  # the videos an earlier run finished
        bar.update(sum(int(v.has_image.sum()) for v in index.videos) - len(items))
    for pos in [p for p, n in remaining.items() if n == 0]:
        writer.finish(pos)
    if runner is None:  # float32 on CUDA too: a cache is read by many trainings
        runner = BackboneRunner(backbone, device, engine, batch_size, len(items), cuda_bf16=False)
    loader = DataLoader(
        FrameImages(items, image_size),
        batch_size=runner.loader_batch_size(batch_size),
        num_workers=num_workers,
    )
    for images, row_ids, video_pos, ok in loader:
        writer.write(row_ids.numpy(), runner(images).cpu().numpy(), ok.numpy())
        if bar is not None:
            bar.update(len(row_ids))
        for pos in video_pos.tolist():
            remaining[pos] -= 1
            if remaining[pos] == 0:
                writer.finish(pos)
    writer.rows.flush()
    return FeatureCache(out_dir)


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
    backbone: str = "regnet_y_1_6gf",
    seed: int = 42,
    progress: bool = False,
) -> dict[str, FeatureCache]:
    """Extract features of every split under ``annotations_dir`` into ``out_dir/<split>/``.

    ``annotations_dir`` is one track's folder or the folder of ABAW's track folders; the cache
    holds the labels of every track found, so one extraction serves training on any of them.
    ``backbone`` is ``model.backbone``; ``weights="none"`` draws it with ``seed``.
    ``progress``: one bar over every split's frames (frames a resumed run finished count as
    done)."""
    from abaw_expr.data.frame_index import build_split_index
    from abaw_expr.data.task_index import build_task_index, find_tasks
    from abaw_expr.model.backbones import backbone_identity, make_backbone

    tasks = find_tasks(annotations_dir)
    if list(tasks) == ["expr"]:
        indexes = {
            split: build_split_index(images_dir, split_dir)
            for split, split_dir in tasks["expr"].items()
        }
    else:
        indexes = build_task_index(images_dir, tasks)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = backbone
    backbone = make_backbone(name, weights, frozen_stages=5, seed=seed)
    identity = backbone_identity(name, backbone)  # of the weights as loaded, before any engine
    drawn = seed if weights.strip().lower() == "none" else -1
    frames = sum(int(v.has_image.sum()) for index in indexes.values() for v in index.videos)
    runner = BackboneRunner(backbone, device, engine, batch_size, frames, cuda_bf16=False)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, desc="features", unit="frame")
    caches = {}
    for split, index in indexes.items():
        caches[split] = extract_split(
            index,
            backbone,
            Path(out_dir) / split,
            identity,
            images_dir,
            batch_size,
            num_workers,
            image_size,
            device,
            engine,
            runner,
            drawn,
            bar,
        )
    if bar is not None:
        bar.close()
    return caches
