"""Batches as the model sees them: masks, labels, and one augmentation draw per window."""

from __future__ import annotations

import numpy as np
import torch

from abaw_expr.data.datamodule import ExpressionDataModule, ImageSource
from abaw_expr.data.images import train_transform

from .conftest import tiny_config


def test_batches_mask_padding_and_hold_only_usable_training_frames(tiny_sample):
    config = tiny_config(data__seq_len=16, data__stride=16)
    dm = ExpressionDataModule(
        config.data, tiny_sample / "annotations", tiny_sample / "cropped_aligned"
    )
    dm.setup("fit")
    index = dm.indexes["Train_Set"]
    usable_total = sum(int(v.usable.sum()) for v in index)
    seen = 0
    for item in (dm.train_set[i] for i in range(len(dm.train_set))):
        video = index.videos[int(item["video"])]
        frames, mask = item["frames"].numpy(), item["mask"].numpy()
        assert item["x"].shape == (16, 3, 32, 32)
        assert video.usable[frames[mask]].all()
        assert (item["labels"].numpy()[mask] >= 0).all()
        seen += int(mask.sum())
    assert seen == usable_total  # stride == seq_len: every usable frame exactly once
    val = dm.val_set[0]
    assert val["x"].dtype == torch.float32 and val["mask"].any()
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[:2] == batch["mask"].shape == batch["labels"].shape


def test_augmentation_is_one_draw_per_window(tiny_sample):
    config = tiny_config()
    dm = ExpressionDataModule(
        config.data, tiny_sample / "annotations", tiny_sample / "cropped_aligned"
    )
    dm.setup("fit")
    video = dm.indexes["Train_Set"].videos[0]
    frame = np.flatnonzero(video.has_image)[:1].repeat(6)  # the same face six times
    torch.manual_seed(0)
    images, ok = ImageSource(32, train_transform(hflip=0.5)).load(0, video, frame)
    assert ok.all()
    assert all(torch.allclose(images[0], images[i]) for i in range(1, 6))
