"""Face images as users have them: odd modes and sizes, broken files."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from abaw_expr.data.datamodule import ExpressionDataModule
from abaw_expr.data.images import read_face
from abaw_expr.errors import InputError

from .conftest import tiny_config


def save(path, mode: str, size: int = 112, fmt: str = "JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 255, (size, size, channels), dtype=np.uint8).squeeze()
    Image.fromarray(pixels, mode).save(path, format=fmt)
    return path


@pytest.mark.parametrize(("mode", "fmt"), [("L", "JPEG"), ("RGBA", "PNG"), ("RGB", "PNG")])
def test_grayscale_four_channel_and_png_named_jpg_become_rgb(tmp_path, mode, fmt):
    face = read_face(save(tmp_path / "v" / "00001.jpg", mode, fmt=fmt), 112)
    assert face is not None and face.shape == (3, 112, 112) and face.dtype == torch.uint8


def test_a_face_of_another_size_is_resized_with_one_warning_per_video(tmp_path, caplog):
    paths = [save(tmp_path / "odd" / f"{i:05d}.jpg", "RGB", size=96) for i in (1, 2, 3)]
    with caplog.at_level(logging.WARNING):
        faces = [read_face(p, 112) for p in paths]
    assert all(f.shape == (3, 112, 112) for f in faces)
    assert sum("resized" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 truncated"])
def test_zero_byte_or_corrupt_file_is_a_frame_without_face(tmp_path, caplog, content):
    path = tmp_path / "v" / "00001.jpg"
    path.parent.mkdir()
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert read_face(path, 112) is None
    assert str(path) in caplog.text


def test_a_video_in_both_splits_is_refused(tiny_sample, tmp_path):
    sample = tmp_path / "s"
    shutil.copytree(tiny_sample, sample)
    train_file = sorted((sample / "annotations" / "Train_Set").glob("*.txt"))[0]
    shutil.copy(train_file, sample / "annotations" / "Validation_Set" / train_file.name)
    dm = ExpressionDataModule(
        tiny_config().data, sample / "annotations", sample / "cropped_aligned"
    )
    with pytest.raises(InputError, match=f"{train_file.stem!r} is in both"):
        dm.setup("fit")
