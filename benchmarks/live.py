"""``abaw-expr live`` on a real clip delivered at its own frame rate: the share of frames
processed, latency (median, p95), frames/s and peak memory, with 1, 3 and 6 people in view.

    python benchmarks/live.py --clip CLIP [--seconds 30] [--people 1,3,6] [--checkpoint C] [--json]

``CLIP`` is a real video of one face (its source and licence recorded in RESULTS.md; never
committed). For N people, N copies of the clip play side by side in a grid (3 to a row, each
copy at the clip's own size, the face search at the grid's full width, so that each face is
as large as in the clip), each copy starting ``N``/7 of the clip later, so they do not move
in step. Each run is the command itself in a fresh process (``--realtime``), as a user runs
it, with a full-size untrained model (RegNetY-1.6GF at 112 px, the paper's head, windows of
64) unless ``--checkpoint`` is given. Targets (issue 34): one face, at least 95 % of frames
processed, latency median <= 150 ms and p95 <= 300 ms on 2 cores.
Record the figures in benchmarks/RESULTS.md with date, machine, load and commit.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from report import emit, environment  # benchmarks/report.py, beside this script


def grid_clip(clip: Path, out: Path, people: int, seconds: float) -> tuple[int, int, float]:
    """``people`` copies of ``clip`` in a grid, ``seconds`` long; returns (width, height, fps)."""
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < int(seconds * fps) + 1:
        ok, frame = capture.read()
        if not ok:
            if not frames:
                raise SystemExit(f"{clip}: no frame could be read")
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop a short clip
            continue
        frames.append(frame)
    capture.release()
    frames = frames[: int(seconds * fps)]
    h, w = frames[0].shape[:2]
    cols = min(people, 3)
    rows = math.ceil(people / 3)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w * cols, h * rows))
    n = len(frames)
    for i in range(n):
        canvas = np.zeros((h * rows, w * cols, 3), np.uint8)
        for k in range(people):
            r, c = divmod(k, 3)
            canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = frames[(i + k * n // 7) % n]
        writer.write(canvas)
    writer.release()
    return w * cols, h * rows, fps


def untrained_checkpoint(path: Path) -> None:
    import torch

    from abaw_expr.config import Config
    from abaw_expr.inference.checkpoint import save_model_checkpoint
    from abaw_expr.model.build import build_model

    config = Config()
    config.model.backbone_weights = "none"
    torch.manual_seed(0)
    save_model_checkpoint(build_model(config), config, path)


def run_live(checkpoint: Path, video: Path, out: Path, width: int) -> dict:
    """The command on ``video`` at its frame rate; its live.json and the peak memory."""
    command = [
        sys.executable, "-m", "abaw_expr.cli", "live", "--checkpoint", str(checkpoint),
        "--source", str(video), "--out", str(out), "--realtime",
        "--detect-width", str(max(640, width)),
    ]  # fmt: skip
    # in a process of its own, whose children are this run alone: its peak, not the largest yet
    measure = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", measure, *command], check=True,
                          capture_output=True, text=True)  # fmt: skip
    record = json.loads((out / "live.json").read_text())
    record["peak_rss_mb"] = round(int(done.stdout.split()[-1]) / 1024, 1)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True, help="a real clip of one face")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--people", default="1,3,6", help="people in view, comma-separated")
    parser.add_argument("--checkpoint", type=Path, help="default: an untrained full-size model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict = {**environment(), "clip": args.clip.name, "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="abaw-live-bench-") as tmp:
        root = Path(tmp)
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = root / "model.ckpt"
            untrained_checkpoint(checkpoint)
        for people in (int(p) for p in args.people.split(",")):
            video = root / f"grid{people}.mp4"
            width, height, fps = grid_clip(args.clip, video, people, args.seconds)
            record = run_live(checkpoint, video, root / f"out{people}", width)
            result[f"people_{people}"] = {
                "size": f"{width}x{height}",
                "source_fps": round(fps, 2),
                "processed": round(record["frames_processed"] / record["frames_in"], 3),
                "frames_in": record["frames_in"],
                "dropped": record["frames_dropped"],
                "fps": record["fps"],
                "latency_ms_p50": record["latency_ms_p50"],
                "latency_ms_p95": record["latency_ms_p95"],
                "people_found": len(record["people"]),
                "rows": record["rows"],
                "peak_rss_mb": record["peak_rss_mb"],
            }
    emit(result, args.json)


if __name__ == "__main__":
    main()
