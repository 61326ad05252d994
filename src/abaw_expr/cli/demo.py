"""Try it: the whole pipeline on the sample data set, on a CPU, in minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from abaw_expr.cli.command import Command, Group


def demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo_out"),
        help="folder for everything the demo writes (default demo_out)",
    )
    p.add_argument("--epochs", type=int, help="epochs of each head (default: the demo's, 8)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the sample, backbone and runs (default 0)"
    )


def run_demo(args: argparse.Namespace) -> None:
    from abaw_expr.synthetic.demo import run_demo

    # a line and a bar per stage on stderr, nothing from the libraries beneath unless -v
    summary = run_demo(args.out, epochs=args.epochs, seed=args.seed, quiet=not args.verbose)
    print(summary)


GROUP = Group(
    "Try it",
    (
        Command(
            "demo",
            "sample data -> features -> train -> evaluate, on CPU in minutes",
            demo_arguments,
            run_demo,
        ),
    ),
)
