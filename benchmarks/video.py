"""Frames per second of ``abaw-expr predict --video`` on a 640x360 video, split by stage, and
the wait before the first frame.

    python benchmarks/video.py [--frames 750] [--engine auto] [--portrait] [--json]

Start-up, each in a fresh process that runs the command as a user would: ``first_frame_s``,
from the start to the first frame whose faces the command has in hand with its model loaded;
``first_batch_s``, to the first batch of crops through the backbone (three runs, the best);
``command_s_250_frames``, the whole command on a 10 s clip (two runs, the best).

Writes a synthetic 640x360, 25 fps video (the sample's faces, about 180 px wide, on a moving
background, out of view for 2 s; with ``--portrait`` a real face instead, Grace Hopper's
portrait from matplotlib, about 95 px wide, sliding to and fro on grey, out of view for 2 s), saves an untrained full-size model (RegNetY-1.6GF at 112 px,
combine head, windows of 64 every 32), and times ``predict_videos`` on it end to end, as the
command runs it (faces: the default, every person), twice: the face pass in this process
(``in_process``) and in a process of its own (``face_process``, what the command does). ``predict_fps`` counts from the call
(checkpoint loading included); ``steady_fps`` counts the pass over the frames and the writing.
Stages: ``decode`` (OpenCV), ``faces`` (detect, track, align), ``model`` (backbone on batches
of crops, in a worker thread that overlaps the faces, + head over windows), ``write`` (CSV,
ABAW txt, timeline PNG); as the backbone overlaps the face search, the stages add up to more
than the wall time. ``--engine`` sets the backbone's engine of these two runs (the start-up
figures use the command's default).
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
    """In a fresh process that runs the command (``abaw_expr.cli.main``): seconds from
    ``started`` (the parent's clock just before it started this process) to the first frame
    whose faces the command has in hand with its model loaded (``first_frame_s``), and to the
    first batch of crops through the backbone (``first_batch_s``), printed; then exit.

    Works on the code of any commit since a5b7596 (for before/after rows): with a face pass in
    a process of its own, "in hand" is when the command takes the frame's faces from it."""
    import threading

    from abaw_expr import cli
    from abaw_expr.video import tracks

    times: dict[str, float] = {}
    face_passes = []  # stopped before this process exits without cleaning up

    def mark(name: str) -> None:
        if name not in times:
            times[name] = round(time.time() - started, 2)
        if len(times) == 2:
            print(json.dumps(times), flush=True)
            for face_pass in face_passes:
                face_pass.close()
            os._exit(0)

    try:
        from abaw_expr.video import face_process

        real_track = face_process.FacePassProcess.track

        def track(self, video, on_face, progress=False, on_frame=None):
            face_passes.append(self)
            return real_track(self, video, on_face, progress, lambda *a: mark("first_frame_s"))

        face_process.FacePassProcess.track = track
    except ImportError:  # before the face pass had a process of its own
        real_read = tracks.read_frames

        def read_frames(path):
            frames = real_read(path)
            frame = next(frames)
            yield frame
            mark("first_frame_s")  # resumed after the frame's face search
            yield from frames

        tracks.read_frames = read_frames

    def watch_backbone() -> None:  # patched once the command has imported it (and torch)
        while (
            runner := getattr(sys.modules.get("abaw_expr.inference.engine"), "BackboneRunner", None)
        ) is None:
            time.sleep(0.01)
        real_call = runner.__call__

        def call(self, *args, **kwargs):
            result = real_call(self, *args, **kwargs)
            mark("first_batch_s")
            return result

        runner.__call__ = call

    threading.Thread(target=watch_backbone, daemon=True).start()
    cli.main(["predict", "--video", video, "--checkpoint", checkpoint, "--out", out,
              "--device", "cpu"])  # fmt: skip


def measure_first_frame(checkpoint: Path, video: Path, out: Path) -> dict[str, float]:
    started = time.time()
    child = subprocess.run(
        [sys.executable, __file__, "--first-frame", str(checkpoint), str(video), str(out)]
        + [repr(started)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure_command(checkpoint: Path, video: Path, out: Path) -> float:
    """Seconds of the whole command, in a fresh process, from start to exit."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "abaw_expr.cli", "predict", "--video", str(video), "--checkpoint",
         str(checkpoint), "--out", str(out), "--device", "cpu"],
        capture_output=True, check=True,
    )  # fmt: skip
    return round(time.perf_counter() - start, 2)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--first-frame":
        first_frame(*sys.argv[2:5], float(sys.argv[5]))
        return
    # Imported here, not above: the --first-frame process must import only what the command does.
    import shutil

    import torch

    from abaw_expr.config import Config
    from abaw_expr.inference.checkpoint import save_model_checkpoint
    from abaw_expr.inference.settings import InferenceSettings, VideoSettings
    from abaw_expr.model.build import build_model
    from abaw_expr.synthetic.video import write_synthetic_video
    from abaw_expr.video.face_process import FacePassProcess
    from abaw_expr.video.predict import predict_videos
    from abaw_expr.video.tracks import FaceOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=750, help="video length (default 30 s)")
    parser.add_argument("--detect-every", type=int, default=10)
    parser.add_argument(
        "--engine", default="auto", help="the backbone's engine in the steady runs (default auto)"
    )
    parser.add_argument("--portrait", action="store_true", help="a real face, not drawn ones")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    options = FaceOptions(detect_every=args.detect_every)
    with tempfile.TemporaryDirectory(prefix="abaw-video-bench-") as tmp:
        root = Path(tmp)
        video, short = root / "clip.mp4", root / "short.mp4"
        absent = ((args.frames // 3, args.frames // 3 + 50),)
        if args.portrait:
            from detectors import portrait_clip  # benchmarks/detectors.py, beside this script

            portrait_clip(video, args.frames, absent[0])
            portrait_clip(short, 250)
        else:
            write_synthetic_video(video, args.frames, absent=absent, seed=0)
            write_synthetic_video(short, 250, seed=1)
        config = Config()
        config.model.backbone_weights = "none"
        torch.manual_seed(0)
        save_model_checkpoint(build_model(config), config, root / "model.ckpt")
        first = [measure_first_frame(root / "model.ckpt", video, root / "first") for _ in range(3)]
        command = [
            measure_command(root / "model.ckpt", short, root / f"short{k}") for k in range(2)
        ]
        runs = {}
        for way in ("in_process", "face_process"):  # the command uses a face process
            shutil.rmtree(root / "out", ignore_errors=True)
            start = time.perf_counter()
            ahead = FacePassProcess([video], options) if way == "face_process" else None
            run = predict_videos(root / "model.ckpt", video, root / "out", options,
                                 InferenceSettings(device="cpu", engine=args.engine),
                                 VideoSettings(progress=False), ahead=ahead)  # fmt: skip
            runs[way] = (run.predictions[0], time.perf_counter() - start)
    result = {
        "video": "640x360, 25 fps, " + ("a real face" if args.portrait else "drawn faces"),
        "detect_every": args.detect_every,
        "engine": args.engine,
        "first_frame_s": min(f["first_frame_s"] for f in first),
        "first_batch_s": min(f["first_batch_s"] for f in first),
        "first_runs": first,
        "command_s_250_frames": min(command),
        "command_s_runs": command,
    }
    for way, (prediction, total) in runs.items():
        frames = prediction.faces.num_frames
        seconds = prediction.seconds
        result[way] = {
            "frames": frames,
            "face_frames": int(prediction.faces.has_face.sum()),
            "predict_fps": round(frames / total, 1),
            "steady_fps": round(frames / (seconds["pass"] + seconds["write"]), 1),
            **{
                f"{k}_ms_per_frame": round(1000 * v / frames, 2)
                for k, v in seconds.items()
                if k != "pass"
            },  # fmt: skip
        }
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    emit({**result, **environment()}, args.json, 32)


if __name__ == "__main__":
    main()
