"""The int8 backbone (``--engine int8``) against float32: speed on this CPU, and agreement.

    python benchmarks/int8.py [--demo demo_out] [--rounds 3] [--keep-guard] [--json]

Speed: RegNetY-1.6GF (random weights) at 112 px on batches of 32 (the CPU chunk), eager
channels-last float32, ONNX Runtime float32 and ONNX Runtime int8 (calibrated on 32 other
images), interleaved over ``--rounds``, the best round of each; ``quantise_s`` is the time to
quantise (export, calibration, writing the graph), the wait before an uncached run's first batch.

Agreement, with ``--demo`` (a ``make demo`` output folder, whose backbone is random but
calibrated and whose head is trained): the demo's checkpoint

* on its video clip (``video/clip.mp4``) through ``predict --video``, once in float32 and once
  in int8 calibrated on the clip's own first faces: the share of frames whose label is the
  same (the issue's bar: 99 %);
* on the sample's validation split from the images (``evaluate``), float32 and int8
  calibrated on the split's first faces: the macro F1 of each (the bar: within 0.5 point).

The engine's own guard (``MIN_COSINE``: int8 is used only if every calibration face's two
features have a cosine of 0.99 or more, else it warns and stays in float32) is switched off
here, so that the figures are those of the int8 graph, not of a silent fallback to float32
(which agrees with float32 perfectly); each int8 run's smallest cosine on its calibration
faces is printed with whether the guard would have kept it (``--keep-guard``: as shipped).
``--rounds 0`` skips the speed part.

Record the figures in benchmarks/RESULTS.md with date, machine (CPU flags: VNNI, AMX) and commit.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from run import best_rate  # benchmarks/run.py, beside this script


def cpu_flags() -> list[str]:
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
    return [f for f in wanted if f in words]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = " (uncommitted changes)" if run("status", "--porcelain") else ""
        return run("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


class Int8Log(logging.Handler):
    """The int8 runner's verdicts (its log lines): smallest cosine on the calibration faces."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.cosines: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "int8" in str(record.msg) and record.args:
            self.cosines.append(round(float(record.args[0]), 4))


@contextlib.contextmanager
def int8_runs(keep_guard: bool):
    """Collect every int8 runner's smallest cosine; without ``keep_guard``, int8 runs whatever
    that cosine is."""
    from abaw_expr.inference import int8

    handler, logger = Int8Log(), logging.getLogger("abaw_expr.inference.engine")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # the runner tells its cosine at INFO when int8 is kept
    shipped = int8.MIN_COSINE
    if not keep_guard:
        int8.MIN_COSINE = -1.0  # Agreement.ok reads it from the module
    try:
        yield handler
    finally:
        int8.MIN_COSINE = shipped
        logger.removeHandler(handler)
        logger.setLevel(level)


def verdicts(cosines: list[float]) -> dict:
    from abaw_expr.inference.int8 import MIN_COSINE

    return {
        "calibration_min_cosine": cosines,
        "guard_keeps_int8": all(c >= MIN_COSINE for c in cosines),
    }


def speed(rounds: int) -> dict:
    from abaw_expr.inference.engine import BackboneRunner
    from abaw_expr.inference.int8 import quantise
    from abaw_expr.model.backbone import build_backbone

    torch.manual_seed(0)
    backbone = build_backbone("none", frozen_stages=5).eval()
    g = torch.Generator().manual_seed(1)
    images = torch.randn(32, 3, 112, 112, generator=g)
    calibration = torch.randn(32, 3, 112, 112, generator=g)
    start = time.perf_counter()
    quantise(backbone, calibration, 32)
    quantise_s = time.perf_counter() - start
    runners = {
        "eager_fp32": BackboneRunner(backbone, "cpu", "eager"),
        "onnxruntime_fp32": BackboneRunner(backbone, "cpu", "onnxruntime"),
        "int8": BackboneRunner(backbone, "cpu", "int8", calibration=calibration),
    }
    reference = runners["eager_fp32"](images)
    best = {name: 0.0 for name in runners}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, runner in runners.items():
                best[name] = max(best[name], best_rate(lambda r=runner: r(images), 32, 3))
    cosine = torch.nn.functional.cosine_similarity(runners["int8"](images), reference).min()
    return {
        "frames_per_s": {k: round(v, 1) for k, v in best.items()},
        "int8_over_eager": round(best["int8"] / best["eager_fp32"], 2),
        "int8_over_onnxruntime_fp32": round(best["int8"] / best["onnxruntime_fp32"], 2),
        "int8_min_cosine_random_images": round(float(cosine), 5),
        "quantise_s": round(quantise_s, 1),
    }


def labels(csv_path: Path) -> list[str]:
    with open(csv_path, newline="") as handle:
        return [row["label"] for row in csv.DictReader(handle)]


def agreement(demo: Path, out: Path, keep_guard: bool) -> dict:
    from abaw_expr.evaluation.evaluate import evaluate
    from abaw_expr.inference.settings import InferenceSettings, VideoSettings
    from abaw_expr.video.predict import predict_videos

    checkpoint, clip = demo / "best.ckpt", demo / "video" / "clip.mp4"
    result: dict = {"checkpoint": str(checkpoint), "guard": "kept" if keep_guard else "off"}
    rows = {}
    for engine in ("auto", "int8"):  # auto: the command's default, eager beside the face pass
        with int8_runs(keep_guard) as log:
            predict_videos(checkpoint, clip, out / f"video_{engine}",
                           settings=InferenceSettings(device="cpu", engine=engine),
                           video_settings=VideoSettings(progress=False))  # fmt: skip
        (csv_path,) = (out / f"video_{engine}").glob("*.csv")
        with open(csv_path, newline="") as handle:
            rows[engine] = list(csv.DictReader(handle))
        if engine == "int8":
            result["video_int8"] = verdicts(log.cosines)
    a, b = rows["auto"], rows["int8"]
    same = [x["label"] == y["label"] for x, y in zip(a, b, strict=True)]
    faces = [x["face"] == "1" and y["face"] == "1" for x, y in zip(a, b, strict=True)]
    result["video_frames"] = len(a)
    result["video_labels_equal"] = round(sum(same) / len(a), 4)
    result["video_frames_with_a_face"] = sum(faces)
    result["video_labels_equal_with_a_face"] = round(
        sum(s for s, f in zip(same, faces, strict=True) if f) / max(sum(faces), 1), 4
    )
    split = demo / "sample" / "annotations" / "Validation_Set"
    images = demo / "sample" / "cropped_aligned"
    f1 = {}
    for engine in ("eager", "int8"):
        with int8_runs(keep_guard) as log:
            metrics = evaluate(checkpoint, images, split, out / f"eval_{engine}",
                               InferenceSettings(device="cpu", num_workers=1, engine=engine))  # fmt: skip
        f1[engine] = metrics["macro_f1"]
        if engine == "int8":
            result["sample_int8"] = verdicts(log.cosines)
    result["sample_macro_f1"] = {k: round(100 * v, 2) for k, v in f1.items()}
    result["sample_macro_f1_difference_points"] = round(100 * (f1["int8"] - f1["eager"]), 2)
    result["bars_met"] = {
        "video_labels_equal_at_least_99_percent": result["video_labels_equal"] >= 0.99,
        "sample_macro_f1_within_half_a_point": abs(result["sample_macro_f1_difference_points"])
        <= 0.5,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="a make demo output folder (agreement)")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds; 0: no speed part")
    parser.add_argument(
        "--keep-guard", action="store_true",
        help="keep the engine's cosine guard (int8 may silently stay float32)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "machine": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime_version(),
        "commit": commit(),
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="abaw-int8-bench-") as tmp:
        os.environ["ABAW_EXPR_CACHE"] = str(Path(tmp) / "cache")  # every quantisation is cold
        if args.rounds > 0:
            result["speed"] = speed(args.rounds)
        if args.demo:
            result["agreement"] = agreement(args.demo, Path(tmp), args.keep_guard)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
