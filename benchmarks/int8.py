"""The int8 backbone (``--engine int8``) against float32: speed on this CPU, and agreement.

    python benchmarks/int8.py [--demo demo_out] [--rounds 3] [--json]

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

Record the figures in benchmarks/RESULTS.md with date, machine (CPU flags: VNNI, AMX) and commit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
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


def speed(rounds: int) -> dict:
    from abaw_expr.model.backbone import build_backbone
    from abaw_expr.model.engine import BackboneRunner
    from abaw_expr.model.int8 import quantise

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


def agreement(demo: Path, out: Path) -> dict:
    from abaw_expr.evaluation import evaluate
    from abaw_expr.video.predict import predict_videos

    checkpoint, clip = demo / "best.ckpt", demo / "video" / "clip.mp4"
    result: dict = {}
    for engine in ("eager", "int8"):
        predict_videos(checkpoint, clip, out / f"video_{engine}", device="cpu", progress=False,
                       engine=engine)  # fmt: skip
    (fp32_csv,) = (out / "video_eager").rglob("*.csv")
    (int8_csv,) = (out / "video_int8").rglob("*.csv")
    a, b = labels(fp32_csv), labels(int8_csv)
    same = sum(x == y for x, y in zip(a, b, strict=True))
    result["video_frames"] = len(a)
    result["video_labels_equal"] = round(same / len(a), 4)
    split = demo / "sample" / "annotations" / "Validation_Set"
    images = demo / "sample" / "cropped_aligned"
    f1 = {}
    for engine in ("eager", "int8"):
        metrics = evaluate(checkpoint, images, split, out / f"eval_{engine}", device="cpu",
                           num_workers=1, engine=engine)  # fmt: skip
        f1[engine] = metrics["macro_f1"]
    result["sample_macro_f1"] = {k: round(100 * v, 2) for k, v in f1.items()}
    result["sample_macro_f1_difference_points"] = round(100 * (f1["int8"] - f1["eager"]), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="a make demo output folder (agreement)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "machine": platform.processor() or platform.machine(),
        "cpu_flags": cpu_flags(),
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="abaw-int8-bench-") as tmp:
        os.environ["ABAW_EXPR_CACHE"] = str(Path(tmp) / "cache")  # every quantisation is cold
        result["speed"] = speed(args.rounds)
        if args.demo:
            result["agreement"] = agreement(args.demo, Path(tmp))
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
