"""The CUDA path end to end, and GPU throughput: one short script for a GPU machine.

    PYTHONPATH=src python benchmarks/gpu.py [--out DIR] [--videos 8]

On a generated sample: end-to-end training with the paper's recipe (112 px, batch 16 x 64
frames, bf16/16-mixed, stem + block1 frozen) for 2 epochs, ``evaluate`` of its best checkpoint
(checked against ``score`` on the written files), feature extraction and head-only training on
the GPU, then backbone throughput by engine. Prints one JSON object (also ``DIR/gpu.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def _rate(fn, items: int, repeats: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return items / best


def backbone_throughput(batch: int = 256) -> dict:
    from torchvision.models import regnet_y_1_6gf

    net = regnet_y_1_6gf().cuda().eval()
    x = torch.randn(batch, 3, 112, 112, device="cuda")
    out = {}
    with torch.inference_mode():
        reference = net(x).float()
        out["backbone_fp32_fps"] = _rate(lambda: net(x), batch)
        torch.backends.cudnn.benchmark = True
        net_cl, x_cl = (
            net.to(memory_format=torch.channels_last),
            x.to(memory_format=torch.channels_last),
        )
        out["backbone_fp32_channels_last_fps"] = _rate(lambda: net_cl(x_cl), batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out["backbone_bf16_channels_last_fps"] = _rate(lambda: net_cl(x_cl), batch)
            bf16 = net_cl(x_cl).float()
        out["backbone_bf16_rel_err"] = float((bf16 - reference).abs().max() / reference.abs().max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--videos", type=int, default=8)
    args = parser.parse_args()
    from abaw_expr.config import Config
    from abaw_expr.evaluation.evaluate import evaluate
    from abaw_expr.evaluation.scoring import score_predictions
    from abaw_expr.inference.settings import InferenceSettings
    from abaw_expr.synthetic.sample import write_sample
    from abaw_expr.training.extraction import extract
    from abaw_expr.training.loop import precision_for, train

    assert torch.cuda.is_available(), "no CUDA device"
    result: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    root = args.out
    start = time.perf_counter()
    write_sample(root / "sample", train_videos=args.videos, val_videos=args.videos // 2, frames=300)
    result["sample_s"] = round(time.perf_counter() - start, 1)
    images, annotations = root / "sample" / "cropped_aligned", root / "sample" / "annotations"

    config = Config()
    config.model.backbone_weights = "none"
    config.trainer.epochs = 2
    config.data.num_workers = 8
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run = train(config, annotations, root / "run", images_dir=images, enable_progress_bar=False)
    seconds = time.perf_counter() - start
    result["train_end_to_end"] = {
        "seconds": round(seconds, 1),
        "best_macro_f1": run.get("best_macro_f1"),
        "train_frames": args.videos * 300 * 2,
        "frames_per_s_incl_val_and_startup": round(args.videos * 300 * 2 / seconds),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        "precision": precision_for(config),
    }
    metrics = evaluate(
        root / "run" / "best.ckpt",
        images,
        annotations / "Validation_Set",
        root / "eval",
        InferenceSettings(device="cuda", num_workers=8),
    )
    rescored = score_predictions(root / "eval" / "predictions", annotations / "Validation_Set")
    result["evaluate"] = {
        "macro_f1": metrics["macro_f1"],
        "equals_score": abs(metrics["macro_f1"] - rescored["macro_f1"]) < 1e-9,
    }
    from safetensors.torch import save_file

    from abaw_expr.model.backbone import build_backbone

    backbone_file = root / "backbone.safetensors"  # cached features need a fixed backbone
    state = {k: v.contiguous() for k, v in build_backbone("none").state_dict().items()}
    save_file(state, str(backbone_file))
    start = time.perf_counter()
    extract(
        images,
        annotations,
        root / "features",
        weights=str(backbone_file),
        batch_size=512,
        device="cuda",
        num_workers=8,
    )
    frames = (args.videos + args.videos // 2) * 300
    result["extract_fps"] = round(frames / (time.perf_counter() - start))
    print(json.dumps(result), flush=True)
    head = Config()
    head.model.backbone_weights = str(backbone_file)  # must match the extraction
    head.trainer.epochs = 20
    start = time.perf_counter()
    run = train(
        head, annotations, root / "head", features_dir=root / "features", enable_progress_bar=False
    )
    result["head_train"] = {
        "seconds_20_epochs": round(time.perf_counter() - start, 1),
        "frames_per_s_incl_val": round(args.videos * 300 * 20 / (time.perf_counter() - start)),
        "best_macro_f1": run.get("best_macro_f1"),
    }
    result.update(
        {k: round(v, 4) if isinstance(v, float) else v for k, v in backbone_throughput().items()}
    )
    text = json.dumps(result, indent=1)
    print(text)
    (root / "gpu.json").write_text(text)


if __name__ == "__main__":
    main()
