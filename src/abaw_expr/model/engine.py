"""How the backbone runs at inference: the fastest engine within 1e-3 of eager float32.

Measured on 2-core CPUs (``benchmarks/engines.py``, RESULTS.md), within 1e-3 of eager
float32 the fastest engine depends on the CPU: on an AVX-512 machine ``torch.compile`` (1.23x
channels-last eager; ONNX Runtime 1.0x), on an AVX2 one ONNX Runtime (1.3x; compile 1.09x).
bf16 is 5e-3 off. So ``auto`` compiles, and only jobs of ``COMPILE_MIN_FRAMES`` or more:
compiling takes 11 to 58 s (warm or cold cache). ONNX Runtime (``onnxruntime``, 4e-7 off,
``pip install onnx onnxruntime``) runs when asked by name. Eager runs on a CPU use the
channels-last layout. On CUDA the backbone runs eagerly under bf16 autocast, as in training.

Beside a face pass (``predict --video``, ``serve``), ``auto`` is eager on a CPU
(:func:`engine_beside_faces`): the face search and the backbone share the cores there, and a
compiled backbone gave only 1.06x the frames a second (1.5 ms a frame), which repays its
compile after 7,000 (warm cache) to 39,000 frames (cold), while ``serve`` would make its
first upload wait for it (RESULTS.md, 2026-11-28, issue 13).

Compiled graphs see one batch size (the last batch is padded) and one memory layout
(contiguous), so a short last batch or channels-last crops need no second graph; if
compiling fails (no C++ compiler, say), the runner warns once and goes on eagerly.
"""

from __future__ import annotations

import io
import logging
import warnings

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

ENGINES = ("auto", "eager", "compile", "onnxruntime")
# Below this, compiling may cost more than it saves on a CPU: on the AVX2 machine it saves
# 1.3 ms a frame and costs 11 s (cache warm) to 58 s (cold), even after 8,500 to 45,000
# frames (RESULTS.md, 2026-11-28).
COMPILE_MIN_FRAMES = 20_000


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


def engine_beside_faces(engine: str) -> str:
    """The engine for a backbone that shares the CPU with a face pass: ``auto`` is eager there
    (on CUDA it is eager anyway); an engine asked for by name is kept."""
    return "eager" if engine == "auto" else engine


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
        self._session = onnx_session(self.backbone) if self.engine == "onnxruntime" else None
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
        if self._session is not None and len(images):
            feed = {"images": images.float().contiguous().numpy()}
            return torch.from_numpy(self._session.run(None, feed)[0])
        if self._compiled is None or len(images) == 0:
            if not self.cuda_bf16:
                return self.backbone(images).float()
            with autocast_for(self.device):
                return self.backbone(images).float()
        out = []
        # Crops made from (H, W, C) arrays arrive channels-last strided; a graph guards on the
        # strides it was compiled for, so one layout for all batches means one compile.
        for chunk in images.contiguous().split(self.batch_size):
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


def onnx_session(backbone: torch.nn.Module):
    """An ONNX Runtime session of ``backbone`` (eval mode; batch and image size dynamic), on the
    CPU with as many threads as PyTorch's. Its threads sleep between batches rather than spin:
    as fast alone, and a face pass beside it keeps its core (RESULTS.md, 2026-11-28)."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        raise InputError(
            "--engine onnxruntime needs ONNX Runtime (pip install onnx onnxruntime)"
        ) from None
    graph = io.BytesIO()
    example = torch.zeros(1, 3, 112, 112)
    # Built outside inference mode, which tracing refuses; the legacy exporter, as `export` uses.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            backbone.eval(),
            (example,),
            graph,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "n", 2: "height", 3: "width"}, "features": {0: "n"}},
            opset_version=18,
            dynamo=False,
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        graph.getvalue(), options, providers=["CPUExecutionProvider"]
    )
