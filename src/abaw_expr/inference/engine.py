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

Every engine sees one batch shape (``CPU_CHUNK`` images on a CPU, the batch size on CUDA; a
short batch is padded), so an image's features never depend on the batch it came in, and a
compiled graph also sees one memory layout (contiguous): a short last batch or channels-last
crops need no second graph. If compiling fails (no C++ compiler, say), the runner warns once
and goes on eagerly.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from abaw_expr.errors import InputError
from abaw_expr.inference.int8 import MIN_COSINE
from abaw_expr.model.backbones import backbone_width

log = logging.getLogger(__name__)

ENGINES = ("auto", "eager", "compile", "onnxruntime", "int8")
# Below this, compiling may cost more than it saves on a CPU: on the AVX2 machine it saves
# 1.3 ms a frame and costs 11 s (cache warm) to 58 s (cold), even after 8,500 to 45,000
# frames (RESULTS.md, 2026-11-28).
COMPILE_MIN_FRAMES = 20_000
# The backbone sees every image in a batch of exactly this many on a CPU (the last one padded
# with copies of its last image): oneDNN picks its kernels by batch size, and on an AVX-512
# CPU one image's features differed by up to 1e-7 between batches of 5 and 16, while order
# and company changed nothing (issue 19). One shape makes features independent of the batch
# size asked for, the worker count, unreadable images and where a killed job resumed. Eager
# batches of 32 run as fast as of 64 or 128 there (benchmarks/backbone_batch.py, RESULTS.md).
CPU_CHUNK = 32


def autocast_for(device: torch.device):
    return (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )


def split_engine(engine: str) -> tuple[str, str | None]:
    """``int8:DIR`` (int8 calibrated on the face images of DIR) -> ("int8", "DIR")."""
    name, _, calibration = engine.partition(":")
    if name == "int8" and calibration:
        return name, calibration
    return engine, None


def choose_engine(engine: str, device: torch.device, frames: int | None) -> str:
    engine = split_engine(engine)[0]
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if device.type != "cpu":
        return "eager"
    if engine == "auto":
        return "compile" if frames is None or frames >= COMPILE_MIN_FRAMES else "eager"
    return engine


def chunk_size(device: torch.device, batch_size: int) -> int:
    """How many images go through the backbone at once: ``CPU_CHUNK`` on a CPU whatever the
    batch size asked for, the batch size on an accelerator."""
    return CPU_CHUNK if device.type == "cpu" else batch_size


def engine_beside_faces(engine: str) -> str:
    """The engine for a backbone that shares the CPU with a face pass: ``auto`` is eager there
    (on CUDA it is eager anyway); an engine asked for by name is kept. (``int8`` is not
    chosen by ``auto``: it is calibrated per run, 5 to 20 s before the first batch; see
    :mod:`.int8`.)"""
    return "eager" if engine == "auto" else engine


class BackboneRunner:
    """``runner(images)`` -> (n, feature_dim) float32 features on the runner's device (888
    for RegNetY).

    An engine that cannot take the backbone (an ONNX export or an int8 quantisation that
    fails, as some timm architectures may) says so in a warning and the runner goes on eagerly.
    """

    def __init__(
        self,
        backbone: torch.nn.Module,
        device: torch.device | str = "cpu",
        engine: str = "auto",
        batch_size: int = 64,
        frames: int | None = None,
        cuda_bf16: bool = True,
        calibration: torch.Tensor | Path | str | None = None,
        chunk: int | None = None,
    ):
        """``chunk``: images per backbone call (default :func:`chunk_size`); ``live`` passes
        each frame's faces as one chunk (:meth:`__call__`), as padding them to ``CPU_CHUNK``
        would cost up to 32 times the compute."""
        self.device = torch.device(device)
        self.cuda_bf16 = cuda_bf16  # False: float32 on CUDA too (feature caches)
        self.backbone = backbone.to(self.device).eval()
        self.feature_dim = backbone_width(backbone)
        self.batch_size = batch_size
        self.chunk = chunk or chunk_size(self.device, batch_size)
        engine, calibration_dir = split_engine(engine)
        self.engine = choose_engine(engine, self.device, frames)
        self._compiled = (
            torch.compile(self.backbone, dynamic=False) if self.engine == "compile" else None
        )
        self._session = self._onnx_or_eager() if self.engine == "onnxruntime" else None
        # int8: quantised on the first call, on ``calibration`` (faces, or a folder of face
        # images: ``engine="int8:DIR"``) or on that call's first faces
        self.calibration = calibration if calibration is not None else calibration_dir
        self.int8_agreement = None
        # ``predict --video`` calls one runner from a thread per person: one quantisation
        self._int8_lock = threading.Lock()
        # Eager on a CPU runs channels-last: oneDNN's convolutions are 1.2x faster so on the
        # 2-core CPU (61 against 50 frames/s at 112 px), at the same output (RESULTS.md).
        self.channels_last = self.engine in ("eager", "int8") and self.device.type == "cpu"
        if self.channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)

    def _onnx_or_eager(self):
        try:
            return onnx_session(self.backbone)
        except InputError:  # ONNX Runtime is not installed: the user asked for it by name
            raise
        except Exception as err:  # the exporter or the runtime refuses this backbone
            log.warning(
                "ONNX Runtime cannot take this backbone (%s); running it eagerly", _first(err)
            )
            self.engine = "eager"
            return None

    def loader_batch_size(self, batch_size: int) -> int:
        """``batch_size`` rounded up to whole chunks, so that only a job's last batch is padded."""
        return -(-batch_size // self.chunk) * self.chunk

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """``chunk``: this call's images per backbone call, instead of the runner's."""
        images = images.to(self.device, non_blocking=True)
        if len(images) == 0:
            return self.backbone(images).float()
        if self.engine == "int8" and self._session is None:
            with self._int8_lock:
                if self.engine == "int8" and self._session is None:
                    self._start_int8(images)
        size = chunk or self.chunk
        out = []
        for part in images.split(size):
            real = len(part)
            if real < size:  # one batch shape: an image's output never depends on it
                part = torch.cat([part, part[-1:].expand(size - real, -1, -1, -1)])
            out.append(self._forward(part)[:real])
        return torch.cat(out)

    def _start_int8(self, images: torch.Tensor) -> None:
        """Quantise on the calibration faces (else on the first chunk of ``images``, padded as
        every chunk is), check int8 against float32 on them, and use it only if they agree."""
        from abaw_expr.inference.int8 import agreement, cached_int8_graph, int8_session

        if self.device.type != "cpu":
            self.engine = "eager"
            return
        faces = self.calibration
        if isinstance(faces, (str, Path)):
            from abaw_expr.inference.int8 import read_calibration_faces

            faces = read_calibration_faces(faces, images.shape[-1])
        if faces is None:
            faces = images[: self.chunk]
            if len(faces) < self.chunk:
                faces = torch.cat([faces, faces[-1:].expand(self.chunk - len(faces), -1, -1, -1)])
        faces = faces.float().contiguous()
        try:
            session = int8_session(cached_int8_graph(self.backbone, faces, self.chunk))
        except InputError:
            raise
        except Exception as err:  # the exporter or the quantiser refuses this backbone
            log.warning("int8 cannot take this backbone (%s); it runs in float32", _first(err))
            self.engine = "eager"
            return
        int8 = np.concatenate(
            [
                session.run(None, {"images": c.contiguous().numpy()})[0]
                for c in faces.split(self.chunk)
            ]
        )
        # the float32 reference (no session yet: _forward runs eagerly)
        fp32 = torch.cat([self._forward(c) for c in faces.split(self.chunk)]).numpy()
        self.int8_agreement = agreement(int8, fp32)
        if self.int8_agreement.ok:
            self._session = session
            log.info(
                "backbone in int8 (cosine to float32 >= %.4f on %d faces)",
                self.int8_agreement.min_cosine,
                self.int8_agreement.faces,
            )
        else:
            self.engine = "eager"
            log.warning(
                "int8 features disagree with float32 on the calibration faces (cosine %.4f "
                "< %.2f): the backbone runs in float32",
                self.int8_agreement.min_cosine,
                MIN_COSINE,
            )

    def _forward(self, chunk: torch.Tensor) -> torch.Tensor:
        if self._session is not None:
            feed = {"images": chunk.float().contiguous().numpy()}
            return torch.from_numpy(self._session.run(None, feed)[0])
        if self._compiled is not None:
            try:
                # Crops made from (H, W, C) arrays arrive channels-last strided; a graph guards
                # on the strides it was compiled for, so one layout means one compile.
                return self._compiled(chunk.contiguous()).float()
            except Exception as err:  # e.g. no C++ compiler on this machine
                log.warning(
                    "torch.compile failed (%s); running the backbone eagerly",
                    str(err).splitlines()[0][:200] if str(err) else type(err).__name__,
                )
                self._compiled, self.engine = None, "eager"
        if self.channels_last:
            chunk = chunk.contiguous(memory_format=torch.channels_last)
        if not self.cuda_bf16:
            return self.backbone(chunk).float()
        with autocast_for(self.device):
            return self.backbone(chunk).float()


def _first(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


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
