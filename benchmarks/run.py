"""Speed and memory figures of abaw-expr on this machine, as one JSON object.

    python benchmarks/run.py [--json] [--quick]

Each figure runs in its own process, so ``peak_rss_mb`` is that benchmark's own peak:

- ``backbone_eager_fps``: torchvision ``regnet_y_1_6gf`` fp32 forward, 112x112, batch 64;
- ``backbone_limit_fps``: measured fp32 matmul FLOP/s / the backbone's FLOPs per frame
  (``torch.utils.flop_counter``), the ceiling this CPU allows;
- ``infer_fps``: the project's prediction path (backbone once per frame with the engine
  evaluate / predict choose, temporal head over overlapping windows) on frames already decoded;
  ``infer_onnxruntime_fps`` the same with ``--engine onnxruntime``, where it is installed;
- ``extract_fps``: ``abaw-expr extract`` on JPEGs of a generated sample, decode included
  (``--engine auto``; ``extract_onnxruntime_fps`` with ``--engine onnxruntime`` where ONNX
  Runtime is installed, session building included);
- ``head_train_fps``: frames per second of head-only training steps (batch 16 x 64 features);
- ``decode_fps``: the same 112x112 JPEGs decoded by Pillow in one process, one after another
  (the ceiling of one loader worker);
- ``loader_fps``: training windows delivered by the DataLoader (2 workers, persistent; uint8,
  with each window's augmentation draw), second pass; ``loader_fps_per_worker_to_decode`` is
  the share of one process's decoding speed each worker delivers;
- ``augment_fps``: the training augmentation (flip + colour jitter + normalisation) that runs
  after the transfer, here on this CPU in the main process.

Record each run in benchmarks/RESULTS.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def best_rate(fn, items: int, repeats: int = 5) -> float:
    """Items per second of the fastest of ``repeats`` calls, after one warm-up call."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return items / best


def backbone_eager(quick: bool) -> dict:
    from torchvision.models import regnet_y_1_6gf

    net = regnet_y_1_6gf().eval()
    x = torch.randn(64, 3, 112, 112)
    with torch.inference_mode():
        return {"backbone_eager_fps": best_rate(lambda: net(x), 64, 2 if quick else 5)}


def backbone_limit(quick: bool) -> dict:
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models import regnet_y_1_6gf

    net = regnet_y_1_6gf().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.randn(1, 3, 112, 112))
    flops_per_frame = counter.get_total_flops()
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul_flops = best_rate(lambda: a @ b, 2 * n**3, 3 if quick else 10)
    return {
        "backbone_gflops_per_frame": flops_per_frame / 1e9,
        "matmul_gflops": matmul_flops / 1e9,
        "backbone_limit_fps": matmul_flops / flops_per_frame,
    }


def infer(quick: bool) -> dict:
    from abaw_expr.data.windows import make_windows
    from abaw_expr.inference.engine import BackboneRunner
    from abaw_expr.model import ExpressionModel, TemporalHead, build_backbone

    model = ExpressionModel(build_backbone("none", 5), TemporalHead("combine")).eval()
    frames = torch.randn(256 if quick else 512, 3, 112, 112)  # decoded, normalised faces
    result = {}
    # auto: the engine evaluate / predict choose for a data set (>= 20,000 frames): compiled.
    for engine in ("auto", "onnxruntime") if _has_onnxruntime() else ("auto",):
        backbone = BackboneRunner(model.backbone, "cpu", engine, batch_size=64, frames=None)

        def run(backbone: BackboneRunner = backbone) -> None:
            features = backbone(frames)
            windows = make_windows(torch.arange(len(frames)).numpy(), 64, 32)
            rows = torch.from_numpy(windows.frames)
            torch.softmax(model.head(features[rows], torch.from_numpy(windows.mask)), -1)

        with torch.inference_mode():
            name = "infer_fps" if engine == "auto" else f"infer_{engine}_fps"
            result[name] = best_rate(run, len(frames), 2 if quick else 3)
    return result


def _sample(root: Path, quick: bool) -> Path:
    from abaw_expr.synthetic.sample import write_sample

    write_sample(
        root, train_videos=2 if quick else 4, val_videos=1, frames=200 if quick else 300, seed=0
    )
    return root


def extract(quick: bool) -> dict:
    from abaw_expr.data.frame_index import build_split_index
    from abaw_expr.model import build_backbone
    from abaw_expr.training.extraction import extract_split

    with tempfile.TemporaryDirectory() as tmp:
        root = _sample(Path(tmp) / "s", quick)
        index = build_split_index(
            root / "cropped_aligned", root / "annotations" / "Train_Set", use_cache=False
        )
        frames = sum(int(v.has_image.sum()) for v in index)
        result = {}
        for engine in ("auto", "onnxruntime") if _has_onnxruntime() else ("auto",):
            start = time.perf_counter()
            extract_split(
                index,
                build_backbone("none", 5),
                Path(tmp) / f"f-{engine}",
                "none",
                root / "cropped_aligned",
                batch_size=64,
                num_workers=1,
                engine=engine,
            )
            name = "extract_fps" if engine == "auto" else f"extract_{engine}_fps"
            result[name] = frames / (time.perf_counter() - start)
        return result


def _has_onnxruntime() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))


def head_train(quick: bool) -> dict:
    from abaw_expr.model import TemporalHead
    from abaw_expr.training.losses import ExpressionLoss

    head = TemporalHead("combine").train()
    loss_fn = ExpressionLoss()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    x = torch.randn(16, 64, 888)
    labels = torch.randint(0, 8, (16, 64))
    mask = torch.ones(16, 64, dtype=torch.bool)

    def step() -> None:
        loss = loss_fn(head(x, mask), labels, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return {
        "head_train_fps": best_rate(
            lambda: [step() for _ in range(5)], 5 * 16 * 64, 2 if quick else 4
        )
    }


def loader(quick: bool) -> dict:
    from abaw_expr.config import DataConfig
    from abaw_expr.data.datamodule import ExpressionDataModule
    from abaw_expr.data.images import read_face

    workers = 2
    with tempfile.TemporaryDirectory() as tmp:
        root = _sample(Path(tmp) / "s", quick)
        config = DataConfig(num_workers=workers, batch_size=4)
        dm = ExpressionDataModule(config, root / "annotations", root / "cropped_aligned")
        dm.setup("fit")
        paths = [
            video.path(int(f))
            for video in dm.indexes["Train_Set"]
            for f in np.flatnonzero(video.usable)
        ]
        decode_fps = best_rate(lambda: [read_face(p, 112) for p in paths], len(paths), 2)

        loader = dm.train_dataloader()
        for _ in loader:  # the first pass starts the workers and warms the page cache
            pass
        start, frames, batches = time.perf_counter(), 0, []
        for batch in loader:
            frames += int(batch["x"].shape[0] * batch["x"].shape[1])
            batches.append(batch)
        loader_fps = frames / (time.perf_counter() - start)

        def augment() -> None:
            for batch in batches:
                dm.on_after_batch_transfer(dm.on_before_batch_transfer(dict(batch), 0), 0)

        return {
            "decode_fps": decode_fps,
            "loader_fps": loader_fps,
            "loader_workers": workers,
            "loader_fps_per_worker_to_decode": loader_fps / workers / decode_fps,
            "augment_fps": best_rate(augment, frames, 2),
        }


BENCHMARKS = {
    "backbone_eager": backbone_eager,
    "backbone_limit": backbone_limit,
    "infer": infer,
    "extract": extract,
    "head_train": head_train,
    "loader": loader,
}


def _child(name: str, quick: bool, queue) -> None:
    result = BENCHMARKS[name](quick)
    result[f"{name}_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller data")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {platform.processor() or 'cpu'}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "commit": commit,
    }
    context = mp.get_context("spawn")  # a fresh process per benchmark: its own peak memory
    for name in args.only or BENCHMARKS:
        queue = context.Queue()
        process = context.Process(target=_child, args=(name, args.quick, queue))
        process.start()
        results.update(queue.get())
        process.join()
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>28}: {value:.1f}" if isinstance(value, float) else f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
