"""Decoding face images and the train / eval transforms.

Augmentation follows the authors: horizontal flip (p=0.5) and colour jitter (brightness 0.5,
contrast 0.25, saturation 0.25), then ImageNet normalisation. We draw one flip and one jitter
per *window*, so a sequence does not flip or flicker from frame to frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
        face = v2.functional.resize(face, [size, size], antialias=True)
    return face


_resized_folders: set[Path] = set()


def train_transform(
    hflip: float = 0.5, color_jitter: tuple[float, float, float] | list[float] = (0.5, 0.25, 0.25)
) -> v2.Transform:
    """Transform of a (T, 3, H, W) uint8 window: the same random draw for all T frames."""
    brightness, contrast, saturation = color_jitter
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(hflip),
            v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform() -> v2.Transform:
    return v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


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
