"""Does one image's backbone output depend on its batch size here, and which size is fastest?

    python benchmarks/backbone_batch.py [--json] [--sizes 1,5,16,32,64,128]

RegNetY-1.6GF (random weights) at 112x112, eager, channels-last, as ``BackboneRunner`` runs it
on a CPU. For each batch size: frames a second (best of 5), and the largest difference of the
features of the images it shares with a batch of ``CPU_CHUNK`` from their features there (0.0: the same bits). oneDNN
picks kernels by CPU and batch size, so both columns are this machine's (issue 19); the
runner's fixed chunk is what makes features independent of the batch size asked for.
"""

from __future__ import annotations

import argparse
import subprocess

import torch

from abaw_expr.inference.engine import CPU_CHUNK
from abaw_expr.model.backbone import RegNetFeatures
from report import emit, environment  # benchmarks/report.py, beside this script
from run import best_rate  # benchmarks/run.py, beside this script


def cpu_flags() -> str:
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if "Model name" in line), "?"
    )
    flags = info.split("Flags:", 1)[-1]
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name}, {isa}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,16,32,64,128")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.manual_seed(0)
    net = RegNetFeatures(frozen_stages=5).eval().to(memory_format=torch.channels_last)
    images = torch.randn(max(sizes + [CPU_CHUNK]), 3, 112, 112)
    result = {**environment(), "cpu": cpu_flags(), "chunk": CPU_CHUNK}
    with torch.inference_mode():

        def run(n: int) -> torch.Tensor:
            return net(images[:n].contiguous(memory_format=torch.channels_last))

        reference = run(CPU_CHUNK)
        for n in sizes:
            result[f"batch_{n}_fps"] = round(best_rate(lambda n=n: run(n), n), 1)
            shared = min(n, CPU_CHUNK)
            result[f"batch_{n}_max_diff"] = (
                (run(n)[:shared] - reference[:shared]).abs().max().item()
            )
    emit(result, args.json)


if __name__ == "__main__":
    main()
