"""Batches as the model sees them: masks, labels, uint8 over the wire, and the training
augmentation drawn once per window and applied on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from abaw_expr.data.augment import Augmentation, augment_frames, normalize_frames
from abaw_expr.data.datamodule import EpochSampler, ExpressionDataModule, ImageSource, ShardSampler
from abaw_expr.data.images import eval_transform, read_face

from .conftest import tiny_config


def _datamodule(sample, **changes) -> ExpressionDataModule:
    config = tiny_config(**changes)
    dm = ExpressionDataModule(config.data, sample / "annotations", sample / "cropped_aligned")
    dm.setup("fit")
    return dm


def test_batches_mask_padding_and_hold_only_usable_training_frames(tiny_sample):
    dm = _datamodule(tiny_sample, data__seq_len=16, data__stride=16)
    index = dm.indexes["Train_Set"]
    usable_total = sum(int(v.usable.sum()) for v in index)
    seen = 0
    for item in (dm.train_set[i] for i in range(len(dm.train_set))):
        video = index.videos[int(item["video"])]
        frames, mask = item["frames"].numpy(), item["mask"].numpy()
        assert item["x"].shape == (16, 3, 32, 32) and item["x"].dtype == torch.uint8
        assert video.usable[frames[mask]].all()
        assert (item["labels"].numpy()[mask] >= 0).all()
        seen += int(mask.sum())
    assert seen == usable_total  # stride == seq_len: every usable frame exactly once
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].dtype == torch.uint8  # workers only decode
    assert batch["x"].shape[:2] == batch["mask"].shape == batch["labels"].shape
    assert batch["augment"].shape == (len(batch["x"]), 7)
    assert "augment" not in next(iter(dm.val_dataloader()))


def test_an_unaugmented_batch_has_exactly_the_pixels_evaluation_sees(tiny_sample):
    dm = _datamodule(tiny_sample)
    batch = next(iter(dm.val_dataloader()))
    batch = dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)
    index = dm.indexes["Validation_Set"]
    for w in range(len(batch["x"])):
        video = index.videos[int(batch["video"][w])]
        for t in np.flatnonzero(batch["mask"][w].numpy()):
            frame = int(batch["frames"][w, t])
            expected = eval_transform()(read_face(video.path(frame), 32))
            assert torch.equal(batch["x"][w, t], expected)


def test_each_window_gets_one_flip_and_one_set_of_jitter_factors_in_torchvisions_ranges():
    augmentation = Augmentation(hflip=0.5, brightness=0.5, contrast=0.25, saturation=0.25)
    draws = torch.stack([augmentation.draw(seed) for seed in range(4000)])
    flips, factors, orders = draws[:, 0], draws[:, 1:4], draws[:, 4:].long()
    assert set(flips.tolist()) == {0.0, 1.0} and 0.46 < flips.mean() < 0.54
    for column, (lo, hi) in zip(factors.T, [(0.5, 1.5), (0.75, 1.25), (0.75, 1.25)], strict=True):
        assert lo <= column.min() and column.max() <= hi  # ColorJitter's [1 - v, 1 + v]
        assert column.min() < lo + 0.01 and column.max() > hi - 0.01  # the whole range is used
        assert abs(float(column.mean()) - 1.0) < 0.02  # uniform
    assert all(sorted(o) == [0, 1, 2] for o in orders.tolist())
    assert len({tuple(o) for o in orders.tolist()}) == 6  # every order occurs
    assert torch.equal(augmentation.draw(7), augmentation.draw(7))  # a seed is a draw
    assert Augmentation(0.0, 0.0, 0.0, 0.0).draw(3)[:4].tolist() == [0.0, 1.0, 1.0, 1.0]


def test_the_draw_is_applied_to_the_whole_window_as_torchvision_would(tiny_sample):
    dm = _datamodule(tiny_sample)
    video = dm.indexes["Train_Set"].videos[0]
    frame = np.flatnonzero(video.has_image)[:1].repeat(6)  # the same face six times
    window, ok = ImageSource(32).load(0, video, frame)
    assert ok.all() and window.dtype == torch.uint8
    augmentation = Augmentation()
    params = [augmentation.draw(seed).tolist() for seed in (1, 2, 3)]
    params[0][0] = 1.0  # make sure one window flips
    out = augment_frames(torch.stack([window] * 3), params)
    for w, (flip, *factors_order) in enumerate(params):
        assert all(torch.equal(out[w, 0], out[w, i]) for i in range(1, 6))  # one draw a window
        expected = TF.to_dtype(window[0], torch.float32, scale=True)
        expected = TF.horizontal_flip(expected) if flip else expected
        factors, order = factors_order[:3], factors_order[3:]
        ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
        for op in order:
            expected = ops[int(op)](expected, factors[int(op)])
        torch.testing.assert_close(out[w, 0], expected, rtol=0, atol=1e-6)
    assert not torch.allclose(out[0, 0], out[1, 0])  # windows differ
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_training_batches_reach_the_model_augmented_and_normalised(tiny_sample):
    dm = _datamodule(tiny_sample)
    batch = next(iter(dm.train_dataloader()))
    raw = batch["x"].clone()
    draws = batch["augment"].tolist()
    moved = dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)
    assert "augment" not in moved and moved["x"].dtype == torch.float32
    expected = TF.normalize(
        augment_frames(raw, draws), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    )
    assert torch.equal(moved["x"], expected)
    assert not torch.equal(moved["x"], normalize_frames(raw))  # augmentation did something


def test_an_unreadable_slot_holds_the_nearest_readable_face_not_black(tiny_sample, tmp_path):
    dm = _datamodule(tiny_sample)
    video = dm.indexes["Train_Set"].videos[0]
    frames = np.flatnonzero(video.has_image)[:4]
    has_image = video.has_image.copy()
    has_image[frames[1]] = False
    from dataclasses import replace

    window, ok = ImageSource(32).load(0, replace(video, has_image=has_image), frames)
    assert ok.tolist() == [True, False, True, True]
    assert torch.equal(window[1], window[0]) or torch.equal(window[1], window[2])


def test_epoch_order_depends_on_seed_and_epoch_only_and_workers_change_nothing(tiny_sample):
    def epoch(sampler_epoch: int, workers: int) -> list:
        dm = _datamodule(tiny_sample, data__num_workers=workers)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(sampler_epoch)
        return [(b["video"], b["frames"], b["x"], b["augment"]) for b in loader]

    first, again, in_workers = epoch(1, 0), epoch(1, 0), epoch(1, 2)
    for a, b, c in zip(first, again, in_workers, strict=True):
        assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(a, b, c, strict=True))
    other = epoch(2, 0)
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("length", [17, 18, 3])
def test_ddp_shares_are_disjoint_and_keep_each_windows_draw(length):
    whole = dict(iter(EpochSampler(length, seed=5, rank=0, world_size=1)))
    shares = [list(EpochSampler(length, seed=5, rank=r, world_size=2)) for r in (0, 1)]
    windows = [[w for w, _ in share] for share in shares]
    assert len(windows[0]) == len(windows[1]) == length // 2  # equal steps on every process
    assert not set(windows[0]) & set(windows[1])  # disjoint
    assert all(whole[w] == seed for share in shares for w, seed in share)
    evaluated = [list(ShardSampler(length, r, 2)) for r in (0, 1)]
    assert sorted(evaluated[0] + evaluated[1]) == list(range(length))  # each exactly once
    with pytest.raises(ValueError):
        EpochSampler(length, rank=2, world_size=2)


def test_the_evaluation_normalisation_is_torchvisions_bit_for_bit():
    from torchvision.transforms import v2

    from abaw_expr.data.images import eval_transform
    from abaw_expr.data.normalize import IMAGENET_MEAN, IMAGENET_STD

    frames = torch.randint(0, 256, (2, 5, 3, 16, 16), dtype=torch.uint8)
    reference = v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    assert torch.equal(eval_transform()(frames), reference(frames))
    assert torch.equal(eval_transform()(frames), normalize_frames(frames))
