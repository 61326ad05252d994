"""uint8 face crops to the backbone's float input: scaled to [0, 1], then ImageNet-normalised.

The ops, in the order, of torchvision's ``v2.ToDtype(torch.float32, scale=True)`` and
``v2.Normalize`` (a test checks they agree bit for bit), written with plain tensor ops so that
the inference commands need not import ``torchvision.transforms.v2``: that imports
``torch._dynamo`` (about 2 s on a 2-core CPU) for a decorator.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_uint8(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) to float32, scaled and ImageNet-normalised."""
    pixels = frames.to(torch.float32).mul_(1.0 / 255)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=pixels.dtype, device=pixels.device)
    std = torch.as_tensor(IMAGENET_STD, dtype=pixels.dtype, device=pixels.device)
    return pixels.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))
