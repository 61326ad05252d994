"""Peak resident memory of ``predict --video`` on 1 and on 10 minutes of the same real footage.

    python benchmarks/memory.py [--footage CLIP] [--short-seconds 60] [--long-seconds 600]
                                [--command "abaw-expr live --checkpoint {checkpoint}
                                 --source {video} --out {out}"] [--json]

The footage (default: the first of ``FOOTAGE`` that exists) is looped to each length, played
forwards then backwards so that the loop makes no cut, and written as an mp4 of its own size
and frame rate. An untrained full-size model (RegNetY-1.6GF at 112 px, as benchmarks/video.py
saves) predicts every frame on the CPU, as the user runs the command, in a process of its
own; its resident memory and that of its children (the face process) are sampled every 0.1 s
and their sum's peak is reported, beside each process's own peak. Memory must not grow with the
video: ``long_over_short`` near 1. Each ``--command`` (placeholders ``{checkpoint}``,
``{video}``, ``{out}``) is measured the same way; ``abaw-expr live`` is added by itself where
``abaw_expr.video.live`` exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit, environment  # benchmarks/report.py, beside this script

FOOTAGE = (
    Path("/work/footage/WolfgangLanger_Pexels.mp4"),  # one face; see RESULTS.md for its source
    Path("/work/footage/hamilton.mp4"),
    Path("/tmp/hamilton.mp4"),
)
PREDICT = "{python} -m abaw_expr.cli predict --video {video} --checkpoint {checkpoint} --out {out} --device cpu"
LIVE = "{python} -m abaw_expr.cli live --checkpoint {checkpoint} --source {video} --out {out}"


def loop_clip(source: Path, target: Path, seconds: float) -> dict:
    """``source`` played forwards and backwards until ``seconds`` long, as an mp4."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < 2:
        raise SystemExit(f"{source}: fewer than 2 frames")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    count, period = round(seconds * fps), 2 * len(frames) - 2
    for i in range(count):
        k = i % period
        writer.write(frames[k if k < len(frames) else period - k])
    writer.release()
    return {"frames": count, "fps": round(fps, 3), "size": f"{width}x{height}"}


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_memory(command: list[str]) -> dict:
    """Run ``command``; the peak of its and its descendants' summed resident memory (MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, each = 0.0, {}
    while process.poll() is None:
        tree = [process.pid]
        for pid in tree:
            tree.extend(_children(pid))
        sizes = {pid: _rss_mb(pid) for pid in tree}
        for pid, size in sizes.items():
            each[pid] = max(each.get(pid, 0.0), size)
        peak = max(peak, sum(sizes.values()))
        time.sleep(0.1)
    error = process.stderr.read().decode(errors="replace")
    if process.returncode:
        raise SystemExit(f"{shlex.join(command)} failed ({process.returncode}):\n{error[-2000:]}")
    return {
        "peak_mb": round(peak),
        "process_peaks_mb": sorted((round(v) for v in each.values() if v > 1), reverse=True),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, help="a real clip (default: see FOOTAGE)")
    parser.add_argument("--short-seconds", type=float, default=60.0)
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument(
        "--command", action="append", default=[], help="another command to measure (repeatable)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="measure only these (predict, live, ...)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    footage = args.footage or next((f for f in FOOTAGE if f.exists()), None)
    if footage is None or not footage.exists():
        raise SystemExit("no footage: give --footage CLIP")
    commands = {"predict": PREDICT}
    if importlib.util.find_spec("abaw_expr.video.live") is not None:
        commands["live"] = LIVE
    for k, template in enumerate(args.command):
        commands[f"command{k + 1}"] = template
    if args.only:
        commands = {name: c for name, c in commands.items() if name in args.only}

    import torch

    from abaw_expr.config import Config
    from abaw_expr.inference.checkpoint import save_model_checkpoint
    from abaw_expr.model.build import build_model

    result = {"footage": str(footage), **environment()}
    with tempfile.TemporaryDirectory(prefix="abaw-memory-bench-") as tmp:
        root = Path(tmp)
        config = Config()
        config.model.backbone_weights = "none"
        torch.manual_seed(0)
        save_model_checkpoint(build_model(config), config, root / "model.ckpt")
        clips = {}
        for name, seconds in (("short", args.short_seconds), ("long", args.long_seconds)):
            clips[name] = root / f"{name}.mp4"
            result[f"{name}_clip"] = loop_clip(footage, clips[name], seconds)
        for label, template in commands.items():
            figures = {}
            for name, clip in clips.items():
                out = root / f"{label}-{name}"
                line = template.format(
                    python=shlex.quote(sys.executable), checkpoint=root / "model.ckpt",
                    video=clip, out=out,
                )  # fmt: skip
                figures[name] = peak_memory(shlex.split(line))
            figures["long_over_short"] = round(
                figures["long"]["peak_mb"] / figures["short"]["peak_mb"], 3
            )
            result[label] = figures
    emit(result, args.json)


if __name__ == "__main__":
    main()
