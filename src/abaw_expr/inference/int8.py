"""The backbone in int8 for CPUs: ONNX Runtime's static post-training quantisation.

Weights are quantised per output channel (int8) and activations per tensor (uint8), in QDQ
form, with activation ranges calibrated on face crops: those given (``--calibration DIR``)
or the first faces the run itself sends through the backbone. RegNetY's squeeze-excitation
gates are the layers known to suffer from per-tensor weights; per-channel ones keep them.

Before it is used, the int8 graph is checked against float32 on the calibration faces: the
smallest cosine similarity of one face's two 888-d features must reach ``MIN_COSINE``, else
the runner warns and stays in float32. The quantised graph is kept in the cache folder
(``ABAW_EXPR_CACHE``, default ``~/.cache/abaw-expr``), keyed by the weights, the calibration
faces and the ONNX Runtime version, so a second run on the same faces skips the 5 to 12 s of
quantising. What int8 costs in agreement and buys in speed: benchmarks/int8.py, RESULTS.md.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from abaw_expr.errors import InputError

log = logging.getLogger(__name__)

# One face's int8 feature against its float32 one: the smallest cosine similarity allowed.
# What it gives in labels and macro F1: benchmarks/int8.py (RESULTS.md).
MIN_COSINE = 0.99
# CPU features under which ONNX Runtime's int8 kernels are the fast path (VNNI dot products,
# AMX tiles); without them int8 is reported to gain little with ONNX Runtime on x86.
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def _onnxruntime():
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise InputError(
            "--engine int8 needs ONNX Runtime (pip install onnx onnxruntime)"
        ) from None
    return onnxruntime


def cpu_has_int8_path(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU has VNNI or AMX int8 instructions (read from ``/proc/cpuinfo``)."""
    try:
        flags = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    words = set(flags.split())
    return any(flag in words for flag in INT8_CPU_FLAGS)


def int8_available() -> bool:
    """ONNX Runtime's quantiser is installed and this CPU has an int8 fast path."""
    try:
        _onnxruntime()
    except InputError:
        return False
    return cpu_has_int8_path()


def cache_dir() -> Path:
    from abaw_expr.data.frame_index import default_cache_dir

    return default_cache_dir() / "int8"


def graph_key(backbone: torch.nn.Module, calibration: torch.Tensor) -> str:
    """What the quantised graph depends on: weights, calibration faces, ONNX Runtime."""
    ort = _onnxruntime()
    digest = hashlib.sha256(ort.__version__.encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(str(tuple(calibration.shape)).encode())
    digest.update(calibration.float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def quantise(backbone: torch.nn.Module, calibration: torch.Tensor, chunk: int) -> bytes:
    """The int8 ONNX graph of ``backbone`` (batch size dynamic, image size that of
    ``calibration``), its activation ranges from ``calibration`` (n, 3, H, W), fed in
    batches of ``chunk``."""
    _onnxruntime()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [b.float().contiguous().numpy() for b in calibration.split(chunk)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    with tempfile.TemporaryDirectory(prefix="abaw-expr-int8-") as tmp:
        fp32, prepared, int8 = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        example = calibration[:1].float()
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                backbone.eval(),
                (example,),
                str(fp32),
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
                opset_version=18,
                dynamo=False,
            )
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(
            str(prepared),
            str(int8),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return int8.read_bytes()


def cached_int8_graph(backbone: torch.nn.Module, calibration: torch.Tensor, chunk: int) -> bytes:
    """:func:`quantise`, kept in :func:`cache_dir` by :func:`graph_key` (written atomically)."""
    from abaw_expr.writers import atomic_write

    path = cache_dir() / f"{graph_key(backbone, calibration)}.onnx"
    if path.is_file():
        return path.read_bytes()
    log.info("quantising the backbone to int8 on %d faces", len(calibration))
    graph = quantise(backbone, calibration, chunk)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(graph))
    except OSError as err:  # a read-only home: quantise again next time
        log.warning("could not keep the int8 graph in %s: %s", path.parent, err)
    return graph


def int8_session(graph: bytes):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


@dataclass
class Agreement:
    """int8 against float32 on the calibration faces."""

    faces: int
    min_cosine: float
    max_relative_error: float  # largest |int8 - fp32| over the largest |fp32|

    @property
    def ok(self) -> bool:
        return self.min_cosine >= MIN_COSINE


def agreement(int8: np.ndarray, fp32: np.ndarray) -> Agreement:
    fp32, int8 = fp32.astype(np.float64), int8.astype(np.float64)
    norms = np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1)
    cosine = (fp32 * int8).sum(axis=1) / np.maximum(norms, 1e-12)
    error = np.abs(int8 - fp32).max() / max(np.abs(fp32).max(), 1e-12)
    return Agreement(len(fp32), float(cosine.min()), float(error))


def read_calibration_faces(folder: Path | str, image_size: int, limit: int = 256) -> torch.Tensor:
    """Up to ``limit`` face images of ``folder`` (searched recursively, sorted), resized to
    ``image_size`` and normalised as the model sees them: (n, 3, S, S) float32."""
    from abaw_expr.data.images import eval_transform, read_face

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("--calibration: not a folder", folder)
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")
    )[:limit]
    if not files:
        raise InputError("--calibration: no .jpg or .png face images in the folder", folder)
    faces = [face for face in (read_face(p, image_size) for p in files) if face is not None]
    if not faces:
        raise InputError("--calibration: none of the images could be read", folder)
    return eval_transform()(torch.stack(faces))
