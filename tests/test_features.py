"""The feature cache: equal to the backbone's output, resumable after a kill, head-only training on it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from abaw_expr.data.feature_cache import FeatureCache, backbone_id, open_split_index
from abaw_expr.data.frame_index import build_split_index
from abaw_expr.data.images import eval_transform, read_face
from abaw_expr.errors import InputError
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.model import build_backbone
from abaw_expr.training.extraction import extract_split
from abaw_expr.training.loop import train

from .conftest import BatchSizeDependent, tiny_config

SIZE = 32


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("none", frozen_stages=5).eval()


def val_index(sample):
    return build_split_index(
        sample / "cropped_aligned", sample / "annotations" / "Validation_Set", use_cache=False
    )


class Killed(Exception):
    pass


class DiesAfter(torch.nn.Module):
    """The backbone, until it has seen ``images`` images: then the 'process' dies."""

    def __init__(self, backbone, images):
        super().__init__()
        self.backbone, self.left = backbone, images

    def forward(self, x):
        if self.left <= 0:
            raise Killed
        self.left -= len(x)
        return self.backbone(x)


def test_cache_holds_the_backbone_features(tiny_sample, backbone, tmp_path):
    index = val_index(tiny_sample)
    cache = extract_split(
        index,
        backbone,
        tmp_path,
        "random-0",
        tiny_sample / "cropped_aligned",
        batch_size=16,
        num_workers=0,
        image_size=SIZE,
    )
    video = index.videos[0]
    frames = np.flatnonzero(video.has_image)[:5]
    images = torch.stack([eval_transform()(read_face(video.path(int(f)), SIZE)) for f in frames])
    with torch.inference_mode():
        expected = backbone(images).numpy()
    np.testing.assert_allclose(cache.read(video.name, frames), expected, rtol=2e-3, atol=2e-3)
    no_face = np.flatnonzero(~video.has_image)
    if len(no_face):
        assert not cache.read(video.name, no_face).any()
    reopened = open_split_index(tmp_path)
    assert [v.name for v in reopened] == [v.name for v in index]
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(reopened, index, strict=True))


def test_killed_extraction_resumes_to_the_same_cache(tiny_sample, backbone, tmp_path):
    index = val_index(tiny_sample)
    args = dict(
        backbone_id="random-0",
        images_dir=tiny_sample / "cropped_aligned",
        batch_size=16,
        num_workers=0,
        image_size=SIZE,
    )
    # Its features depend on the batch size, as oneDNN's do on AVX-512 CPUs: a resumed run
    # meets the backbone with other batches than an uninterrupted one (issue 19).
    backbone = BatchSizeDependent(backbone)
    whole = extract_split(index, backbone, tmp_path / "whole", **args)
    with pytest.raises(Killed):
        extract_split(index, DiesAfter(backbone, 120), tmp_path / "cut", **args)
    done = np.load(tmp_path / "cut" / "done.npy")
    assert done.any() and not done.all()  # the kill came mid-way
    with pytest.raises(InputError, match="incomplete"):
        FeatureCache(tmp_path / "cut")
    resumed = extract_split(index, DiesAfter(backbone, 10**6), tmp_path / "cut", **args)
    assert np.array_equal(np.asarray(resumed.rows), np.asarray(whole.rows))
    with pytest.raises(InputError, match="backbone"):
        extract_split(index, backbone, tmp_path / "cut", **{**args, "backbone_id": "other"})


def test_the_cache_is_the_same_whatever_the_batch_size_and_workers(tiny_sample, backbone, tmp_path):
    index = val_index(tiny_sample)
    args = dict(backbone_id="random-0", images_dir=tiny_sample / "cropped_aligned", image_size=SIZE)
    backbone = BatchSizeDependent(backbone)
    first = extract_split(index, backbone, tmp_path / "a", batch_size=8, num_workers=0, **args)
    other = extract_split(index, backbone, tmp_path / "b", batch_size=50, num_workers=2, **args)
    assert np.array_equal(np.asarray(first.rows), np.asarray(other.rows))


def test_unreadable_image_becomes_a_frame_without_face(tiny_sample, backbone, tmp_path):
    sample = tmp_path / "s"
    shutil.copytree(tiny_sample, sample)
    index = val_index(sample)
    video = index.videos[0]
    broken = int(np.flatnonzero(video.has_image)[3])
    video.path(broken).write_bytes(b"\xff\xd8 not a jpeg")
    extract_split(
        index,
        backbone,
        tmp_path / "c",
        "random-0",
        sample / "cropped_aligned",
        batch_size=16,
        num_workers=0,
        image_size=SIZE,
    )
    assert not open_split_index(tmp_path / "c").videos[0].has_image[broken]


def test_head_training_on_features_with_auto_lr(tiny_sample, backbone, tmp_path):
    weights = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    images = tiny_sample / "cropped_aligned"
    for split in ("Train_Set", "Validation_Set"):
        index = build_split_index(images, tiny_sample / "annotations" / split, use_cache=False)
        extract_split(
            index, backbone, tmp_path / "f" / split, backbone_id(str(weights)), images, 32, 0, SIZE
        )
    with pytest.raises(InputError, match="extracted with backbone"):
        train(
            tiny_config(model__backbone_weights="imagenet"),
            tiny_sample / "annotations",
            tmp_path / "bad",
            features_dir=tmp_path / "f",
        )
    with pytest.raises(InputError, match="draws new random"):
        train(
            tiny_config(),
            tiny_sample / "annotations",
            tmp_path / "bad2",
            features_dir=tmp_path / "f",
        )
    config = tiny_config(
        trainer__epochs=2,
        optim__auto_lr=True,
        data__seq_len=16,
        data__stride=8,
        model__backbone_weights=str(weights),
    )
    run = train(
        config,
        tiny_sample / "annotations",
        tmp_path / "run",
        features_dir=tmp_path / "f",
        enable_progress_bar=False,
    )
    model, _ = load_model(
        tmp_path / "run" / "best.ckpt"
    )  # the checkpoint carries the backbone of the cache
    reference = backbone.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.backbone.state_dict().items())
    assert run["status"] == "finished"
    assert run["auto_lr"]["suggested"] is None or run["auto_lr"]["suggested"] > 0
    assert len(run["auto_lr"].get("lrs", [1])) > 0
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["auto_lr"] == run["auto_lr"] and saved["lr"] == run["lr"]
    assert config.model.frozen_stages == 5  # the backbone is not trained on features
