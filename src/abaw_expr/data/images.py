"""Decoding face images, and the evaluation transform of single frames.

Training augmentation runs on the training device on whole batches: :mod:`.augment`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from abaw_expr.data.normalize import normalize_uint8

log = logging.getLogger(__name__)


def read_face(path: Path, size: int) -> torch.Tensor | None:
    """One face as a (3, size, size) uint8 tensor, or None (with a warning) if it cannot be decoded.

    Grayscale and 4-channel images are converted to RGB; a face of another size is resized,
    with one warning per video folder.
    Decoded with Pillow (torchvision's own decoders are deprecated since 0.29).
    """
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # truncated, corrupt, empty, not an image
        log.warning(
            "%s: unreadable image, treated as a frame without a face (%s)",
            path,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
        )
        return None
    face = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    if face.shape[-2:] != (size, size):
        if path.parent not in _resized_folders:  # once per video, not once per frame
            _resized_folders.add(path.parent)
            log.warning(
                "%s: %dx%d faces, resized to %dx%d",
                path.parent,
                face.shape[2],
                face.shape[1],
                size,
                size,
            )
        from torchvision.transforms.v2 import functional as TF  # rare: not at start-up

        face = TF.resize(face, [size, size], antialias=True)
    return face


_resized_folders: set[Path] = set()


def eval_transform():
    """uint8 (..., 3, H, W) to the model's input: the ops of :func:`.augment.normalize_frames`
    (see :mod:`.normalize`)."""
    return normalize_uint8


class FrameImages(Dataset):
    """Single face images for per-frame backbone passes: (image, row id, video position, ok).

    ``items`` are (row id, video position, path); an unreadable image is zeros with ok False.
    """

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
