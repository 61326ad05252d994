"""Frames per second of ``abaw-expr predict --video`` on a 640x360 video, split by stage.

    python benchmarks/video.py [--frames 750] [--json]

Also measures the wait before the first frame: a fresh process, started as the command would
be, imports what ``predict --video`` imports, loads the checkpoint and the detector, and the
time from its start to the end of the first frame's face search is ``first_frame_s``.

Writes a synthetic 640x360, 25 fps video (the sample's faces, about 180 px wide, on a moving
background, out of view for 2 s), saves an untrained full-size model (RegNetY-1.6GF at 112 px,
combine head, windows of 64 every 32), and times ``predict_videos`` on it end to end, as the
command runs it (faces: the default, every person). ``predict_fps`` counts from the call
(checkpoint loading included); ``steady_fps`` counts the pass over the frames and the writing.
Stages: ``decode`` (OpenCV), ``faces`` (detect, track, align), ``model`` (backbone on batches
of crops, in a worker thread that overlaps the faces, + head over windows), ``write`` (CSV,
ABAW txt, timeline PNG); as the backbone overlaps the face search, the stages add up to more
than the wall time.
Record the figures in benchmarks/RESULTS.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit, environment  # benchmarks/report.py, beside this script


def first_frame(checkpoint: str, video: str, out: str, started: float) -> None:
    """In a fresh process: seconds from ``started`` (the parent's clock just before it started
    this process) to the end of the first frame's face search, printed; then exit."""
    from abaw_expr.video import predict, tracks  # what the command imports

    real_read = tracks.read_frames

    def read_frames(path):
        frames = real_read(path)
        yield next(frames)
        print(json.dumps({"first_frame_s": round(time.time() - started, 2)}), flush=True)
        os._exit(0)

    tracks.read_frames = read_frames
    predict.predict_videos(checkpoint, video, out, device="cpu", progress=False)


def measure_first_frame(checkpoint: Path, video: Path, out: Path) -> float:
    started = time.time()
    child = subprocess.run(
        [sys.executable, __file__, "--first-frame", str(checkpoint), str(video), str(out)]
        + [repr(started)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])["first_frame_s"]


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--first-frame":
        first_frame(*sys.argv[2:5], float(sys.argv[5]))
        return
    # Imported here, not above: the --first-frame process must import only what the command does.
    import torch

    from abaw_expr.checkpoint import save_model_checkpoint
    from abaw_expr.config import Config
    from abaw_expr.model.build import build_model
    from abaw_expr.video.predict import predict_videos
    from abaw_expr.video.synthetic import write_synthetic_video
    from abaw_expr.video.tracks import FaceOptions

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
        first = [measure_first_frame(root / "model.ckpt", video, root / "first") for _ in range(3)]
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
    stages = {
        f"{k}_ms_per_frame": round(1000 * v / frames, 2) for k, v in seconds.items() if k != "pass"
    }
    result = {
        "video": "640x360, 25 fps, synthetic",
        "frames": frames,
        "face_frames": int(prediction.faces.has_face.sum()),
        "predict_fps": round(frames / total, 1),
        "steady_fps": round(frames / (seconds["pass"] + seconds["write"]), 1),
        **stages,
        "first_frame_s": min(first),
        "first_frame_s_runs": first,
        "detect_every": args.detect_every,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **environment(),
    }
    emit(result, args.json, 32)


if __name__ == "__main__":
    main()
