"""How the backbone runs at inference: the fastest engine within 1e-3 of eager float32.

Measured on the 2-core CPU here (``benchmarks/engines.py``, RESULTS.md): ``torch.compile`` runs
RegNetY-1.6GF about 1.3x faster than eager at the same output (relative error 3e-7); bf16 is
faster still but 5e-3 off, and ONNX Runtime and OpenVINO fp32 are not faster. So on a CPU
``auto`` compiles, unless the job is too small to repay the seconds compiling takes; eager
runs on a CPU use the channels-last layout. On CUDA the backbone runs eagerly under bf16
autocast, as in training.

Compiled graphs see one fixed batch size (the last batch is padded), so nothing recompiles; if
compiling fails (no C++ compiler, say), the runner warns once and goes on eagerly.
"""

from __future__ import annotations

import logging

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

ENGINES = ("auto", "eager", "compile")
COMPILE_MIN_FRAMES = 3000  # below this, compiling (~5 s) costs more than it saves on a CPU


def autocast_for(device: torch.device):
    return (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )


def choose_engine(engine: str, device: torch.device, frames: int | None) -> str:
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if device.type != "cpu":
        return "eager"
    if engine == "auto":
        return "compile" if frames is None or frames >= COMPILE_MIN_FRAMES else "eager"
    return engine


class BackboneRunner:
    """``runner(images)`` -> (n, 888) float32 features on the runner's device."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        device: torch.device | str = "cpu",
        engine: str = "auto",
        batch_size: int = 64,
        frames: int | None = None,
        cuda_bf16: bool = True,
    ):
        self.device = torch.device(device)
        self.cuda_bf16 = cuda_bf16  # False: float32 on CUDA too (feature caches)
        self.backbone = backbone.to(self.device).eval()
        self.batch_size = batch_size
        self.engine = choose_engine(engine, self.device, frames)
        self._compiled = (
            torch.compile(self.backbone, dynamic=False) if self.engine == "compile" else None
        )
        # Eager on a CPU runs channels-last: oneDNN's convolutions are 1.2x faster so on the
        # 2-core CPU (61 against 50 frames/s at 112 px), at the same output (RESULTS.md).
        self.channels_last = self.engine == "eager" and self.device.type == "cpu"
        if self.channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self._compiled is None or len(images) == 0:
            if not self.cuda_bf16:
                return self.backbone(images).float()
            with autocast_for(self.device):
                return self.backbone(images).float()
        out = []
        for chunk in images.split(self.batch_size):
            real = len(chunk)
            if real < self.batch_size:
                chunk = torch.cat([chunk, chunk[-1:].expand(self.batch_size - real, -1, -1, -1)])
            try:
                out.append(self._compiled(chunk)[:real].float())
            except Exception as err:  # e.g. no C++ compiler on this machine
                log.warning(
                    "torch.compile failed (%s); running the backbone eagerly",
                    str(err).splitlines()[0][:200] if str(err) else type(err).__name__,
                )
                self._compiled, self.engine = None, "eager"
                return self(images)
        return torch.cat(out)
