"""The temporal probe: do the temporal branches use context? Per variant, macro F1 over all
validation frames and over the uninformative ones, mean ± std over seeds.

    python benchmarks/probe.py [--seeds 3] [--variants combine,only_att,only_trans,no_att_trans,combine+pos]
                               [--neutral-looks-background] [--bursts LO,HI] [--threads N]
                               [--dir DIR] [--json]

The probe (``abaw_expr.synthetic.probe``): 888-d feature sequences, segments of 80..160 frames
(longer than the 64-frame window), Neutral and expression segments in turn; inside every
segment 40 % of the frames are background noise that keeps the segment's label. A frame-only
head cannot beat the class prior on those frames. Each run is ``train --features`` on the
probe cache (the paper's loss, AdamW, plateau schedule, windows of 64, batch 16; training
windows every 32 frames, 3 epochs), evaluated on every validation frame with overlapping
windows. ``--neutral-looks-background`` makes Neutral frames background too: an
uninformative frame of an expression segment then looks like the Neutral stretch beside it
(the case the paper's position-free head cannot resolve; ``combine+pos`` is the opt-in
relative position bias). ``--bursts 4,12`` makes the uninformative frames come in runs of 4 to
12 frames, as the sample's faces lapse to the rest face. Figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from abaw_expr.synthetic.context_probe import run_probe
from abaw_expr.synthetic.probe import ProbeSpec
from abaw_expr.training.ablation import pm

ALL = "combine,only_att,only_trans,no_att_trans,combine+pos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default=ALL)
    parser.add_argument("--neutral-looks-background", action="store_true")
    parser.add_argument("--bursts", help="uninformative frames in runs of LO..HI frames, e.g. 4,12")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--dir", type=Path, help="keep the probe and runs here (a new folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "abaw_expr"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    bursts = tuple(int(x) for x in args.bursts.split(",")) if args.bursts else None
    spec = ProbeSpec(neutral_looks_background=args.neutral_looks_background, bursts=bursts)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp) / "probe"

        def on_run(arm: str, seed: int, m: dict) -> None:
            sub = m["subsets"]["uninformative"]
            print(
                f"  {arm} seed {seed}: macro F1 {m['macro_f1']:.4f}, uninformative {sub['macro_f1']:.4f}"
                f" ({time.time() - started:.0f} s)",
                flush=True,
            )

        table = run_probe(
            root, spec, args.variants.split(","), args.seeds, args.epochs, on_run=on_run
        )
    seconds = time.time() - started
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    record = {
        "probe": ("neutral-looks-background" if spec.neutral_looks_background else "uninformative")
        + (f", bursts of {bursts[0]}..{bursts[1]}" if bursts else ""),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "commit": commit,
        "seconds": round(seconds, 1),
        "arms": {
            arm: {
                "seeds": row["seeds"],
                "macro_f1": [row["macro_f1_mean"], row["macro_f1_std"]],
                **{
                    name: [
                        v["macro_f1"]["mean"],
                        v["macro_f1"]["std"],
                        v["accuracy"]["mean"],
                        v["accuracy"]["std"],
                    ]
                    for name, v in row["subsets"].items()
                },
            }
            for arm, row in table["arms"].items()
        },
    }
    if args.json:
        print(json.dumps(record))
        return
    print(f"probe: {record['probe']}, {args.seeds} seeds, {seconds:.0f} s, commit {commit}")
    print("variant        macro F1 all    macro F1 uninf.  acc. uninf.   acc. uninf. in expression")
    for arm, row in table["arms"].items():
        s = row["subsets"]
        cells = [
            pm({"mean": row["macro_f1_mean"], "std": row["macro_f1_std"]}),
            pm(s["uninformative"]["macro_f1"]),
            pm(s["uninformative"]["accuracy"]),
            pm(s["uninformative_in_expression"]["accuracy"]),
        ]
        print(f"{arm:<14} " + "  ".join(f"{c:<15}" for c in cells))


if __name__ == "__main__":
    main()
