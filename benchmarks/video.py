"""Frames per second of ``abaw-expr predict --video`` on a 640x360 video, split by stage.

    python benchmarks/video.py [--frames 750] [--json]

Writes a synthetic 640x360, 25 fps video (the sample's faces, about 180 px wide, on a moving
background, out of view for 2 s), saves an untrained full-size model (RegNetY-1.6GF at 112 px,
combine head, windows of 64 every 32), and times ``predict_videos`` on it end to end, as the
command runs it. Stages: ``decode`` (OpenCV), ``faces`` (detect, track, align), ``model``
(backbone on batches of crops + head over windows), ``write`` (CSV, ABAW txt, timeline PNG).
Record the figures in benchmarks/RESULTS.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from abaw_expr.checkpoint import save_model_checkpoint
from abaw_expr.config import Config
from abaw_expr.model.module import build_model
from abaw_expr.video.predict import predict_videos
from abaw_expr.video.synthetic import write_synthetic_video
from abaw_expr.video.tracks import FaceOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=750, help="video length (default 30 s)")
    parser.add_argument("--detect-every", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="abaw-video-bench-") as tmp:
        root = Path(tmp)
        video = root / "clip.mp4"
        absent = ((args.frames // 3, args.frames // 3 + 50),)
        write_synthetic_video(video, args.frames, absent=absent, seed=0)
        config = Config()
        config.model.backbone_weights = "none"
        torch.manual_seed(0)
        save_model_checkpoint(build_model(config), config, root / "model.ckpt")
        start = time.perf_counter()
        run = predict_videos(
            root / "model.ckpt",
            video,
            root / "out",
            FaceOptions(detect_every=args.detect_every),
            device="cpu",
            progress=False,
        )
        total = time.perf_counter() - start
    prediction = run.predictions[0]
    frames = prediction.faces.num_frames
    seconds = prediction.seconds
    stages = {f"{k}_ms_per_frame": round(1000 * v / frames, 2) for k, v in seconds.items()}
    result = {
        "video": "640x360, 25 fps, synthetic",
        "frames": frames,
        "face_frames": int(prediction.faces.has_face.sum()),
        "predict_fps": round(frames / total, 1),
        "predict_fps_without_model_load": round(frames / sum(seconds.values()), 1),
        **stages,
        "detect_every": args.detect_every,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")


if __name__ == "__main__":
    main()
