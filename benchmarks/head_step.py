"""One training step of the temporal head on cached features, per variant, on this machine.

    python benchmarks/head_step.py [--steps 20] [--threads N]

A step is what ``train --features`` does per batch: forward over 16 windows of 64 frames of
888-d features, the paper's loss, backward and an AdamW update. Reports milliseconds per step
for the code as it is (``ms_per_step``), and, to show what the CPU-specific choices buy, the
same step with PyTorch's own dropout (``bernoulli_`` mask) and with the unfused (foreach)
optimiser. Also the 2048x2048 float32 matmul rate, so that figures from different machines
can be compared as a ratio. Record the figures in benchmarks/RESULTS.md with date, machine and
commit.
"""

from __future__ import annotations

import argparse
import platform
import time


def main() -> None:
    import torch

    from abaw_expr.config import Config
    from abaw_expr.model.temporal import VARIANTS, TemporalHead
    from abaw_expr.training.losses import ExpressionLoss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    c = Config().loss
    loss_fn = ExpressionLoss(c.gamma, c.alpha, c.kl_weight, c.smoothing)
    features = torch.randn(16, 64, 888)
    mask = torch.ones(16, 64, dtype=torch.bool)
    labels = torch.randint(0, 8, (16, 64))

    def time_steps(variant: str, torch_dropout: bool, fused: bool) -> float:
        torch.manual_seed(0)
        head = TemporalHead(variant).train()
        if torch_dropout:  # PyTorch's dropout, as before (in the instance's __dict__, which
            # wins over the method; nn.Module.__setattr__ would register a submodule instead)
            object.__setattr__(head, "_drop", head.dropout)
        optimiser = torch.optim.AdamW(head.parameters(), 1e-3, fused=fused)

        def step() -> None:
            logits = head(features, mask)
            loss = loss_fn(logits, labels, mask)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return 1000 * (time.perf_counter() - start) / args.steps

    a = torch.randn(2048, 2048)
    a @ a
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 10 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9
    print(f"machine {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, matmul {gflops:.0f} GFLOP/s")  # fmt: skip
    print(f"{'variant':14s} {'ms_per_step':>12s} {'torch_dropout':>14s} {'foreach_adamw':>14s}")
    for variant in VARIANTS:
        now = time_steps(variant, False, True)
        old_dropout = time_steps(variant, True, True)
        foreach = time_steps(variant, False, False)
        print(f"{variant:14s} {now:12.1f} {old_dropout:14.1f} {foreach:14.1f}")


if __name__ == "__main__":
    main()
