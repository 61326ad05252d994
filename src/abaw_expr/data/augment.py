"""Training augmentation on the training device: the authors' flip and colour jitter, batched.

DataLoader workers only decode and collate uint8 windows; the random draw of each window is
made in the worker from the window's own seed (handed out by ``EpochSampler``, so it depends
on (seed, epoch) alone) and travels with the batch as a few numbers. After the batch reaches
the device, :func:`prepare_frames` turns the uint8 frames into the model's float input:
augmented with those numbers for training, only scaled and normalised otherwise, with
torchvision's functional ops.

The draw follows torchvision's ``RandomHorizontalFlip(p)`` + ``ColorJitter(brightness,
contrast, saturation)``: a flip with probability ``p``; each factor uniform in
``[max(0, 1 - v), 1 + v]``; the three adjustments in a random order. One draw per *window*,
so a sequence does not flip or flicker from frame to frame. The adjustments run on float
pixels in [0, 1] (torchvision clamps to that range after each one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from abaw_expr.data.torchvision_import import import_torchvision

import_torchvision()  # first, so that torchvision comes in without torch._dynamo

from torchvision.transforms.v2 import functional as TF  # noqa: E402

from abaw_expr.data.normalize import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

_ADJUST = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)


@dataclass(frozen=True)
class Augmentation:
    """The authors' augmentation: flip probability and colour-jitter strengths."""

    hflip: float = 0.5
    brightness: float = 0.5
    contrast: float = 0.25
    saturation: float = 0.25

    @classmethod
    def from_config(cls, hflip: float, color_jitter) -> Augmentation:
        brightness, contrast, saturation = color_jitter
        return cls(float(hflip), float(brightness), float(contrast), float(saturation))

    def ranges(self) -> list[tuple[float, float]]:
        """The interval each jitter factor is drawn from, as torchvision's ColorJitter."""
        return [
            (max(0.0, 1.0 - v), 1.0 + v) for v in (self.brightness, self.contrast, self.saturation)
        ]

    def draw(self, seed: int) -> torch.Tensor:
        """One window's parameters from its seed: (flip, 3 factors, 3 op indices), float64.

        Factors of a jitter strength of 0 are exactly 1 (the adjustment is then skipped).
        """
        generator = torch.Generator().manual_seed(seed)
        flip = float(torch.rand((), generator=generator) < self.hflip)
        factors = [
            float(torch.empty(()).uniform_(lo, hi, generator=generator)) if hi > lo else 1.0
            for lo, hi in self.ranges()
        ]
        order = torch.randperm(3, generator=generator).tolist()
        return torch.tensor([flip, *factors, *order], dtype=torch.float64)


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., 3, H, W) to the model's float input: scaled to [0, 1], ImageNet-normalised.

    The same ops, in the same order, as evaluation and prediction use on single frames.
    """
    return TF.normalize(TF.to_dtype(frames, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)


def augment_frames(frames: torch.Tensor, params: list[list[float]]) -> torch.Tensor:
    """Flip and colour-jitter uint8 windows (B, T, 3, H, W), window b with ``params[b]``.

    ``params`` are host-side numbers (see :meth:`Augmentation.draw`), so applying them never
    waits on the device. Returns float pixels in [0, 1], not yet normalised.
    """
    pixels = TF.to_dtype(frames, torch.float32, scale=True)
    out = []
    for window, (flip, *rest) in zip(pixels, params, strict=True):
        factors, order = rest[:3], rest[3:]
        if flip:
            window = TF.horizontal_flip(window)
        for op in order:
            factor = factors[int(op)]
            if factor != 1.0:
                window = _ADJUST[int(op)](window, factor)
        out.append(window)
    return torch.stack(out)


def prepare_frames(frames: torch.Tensor, params: list[list[float]] | None) -> torch.Tensor:
    """uint8 windows to normalised float input, augmented when ``params`` are given."""
    if params is None:
        return normalize_frames(frames)
    return TF.normalize(augment_frames(frames, params), IMAGENET_MEAN, IMAGENET_STD)
