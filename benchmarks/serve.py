"""``serve``: the time from upload to the finished page, against the analysis alone.

    python benchmarks/serve.py [--seconds 20] [--json]

Writes a synthetic 640x360, 25 fps clip (the sample's faces, out of view for 2 s) and an
untrained full-size model (RegNetY-1.6GF at 112 px, combine head), then, in one process:

- ``analysis_s``: ``predict_video`` on the clip as a serve job runs it (same runner, one
  subject), and nothing else;
- ``page_s``: the clip uploaded through the app's test client until the job is ``done`` (the
  preview encoded while analysing, the outputs and ``result.json`` written);
- ``render_after_s``: what the old flow added after the analysis, rendering the annotated VP8
  preview with OpenCV (a second decode), for the record.

Rounds alternate analysis and page, so that drift of a shared machine hits both; the ratio
``page_s / analysis_s`` is the figure (issue 13 asks at most 1.3 for a 20 s clip).
Record the figures in benchmarks/RESULTS.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from report import emit, environment  # benchmarks/report.py, beside this script


def main() -> None:
    import torch

    from abaw_expr.config import Config
    from abaw_expr.inference.checkpoint import save_model_checkpoint
    from abaw_expr.inference.settings import InferenceSettings
    from abaw_expr.model.build import build_model
    from abaw_expr.serve import create_app
    from abaw_expr.synthetic.video import write_synthetic_video
    from abaw_expr.video.outputs import write_annotated_video
    from abaw_expr.video.predict import predict_video

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length at 25 fps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    frames = round(args.seconds * 25)
    with tempfile.TemporaryDirectory(prefix="abaw-serve-bench-") as tmp:
        root = Path(tmp)
        clip = root / "clip.mp4"
        write_synthetic_video(clip, frames, absent=((frames // 3, frames // 3 + 50),), seed=0)
        config = Config()
        config.model.backbone_weights = "none"
        torch.manual_seed(0)
        save_model_checkpoint(build_model(config), config, root / "model.ckpt")
        app = create_app(
            root / "model.ckpt", root / "jobs", settings=InferenceSettings(device="cpu")
        )
        runner = app.runner
        client = app.test_client()
        warm = root / "warm.mp4"  # compiles the backbone (serve's CPU default) before timing
        write_synthetic_video(warm, 80, seed=1)
        predict_video(runner.model, warm, runner.options, runner.seq_len, runner.settings,
                      runner=runner.backbone)  # fmt: skip
        analysis, page, render = [], [], []
        try:
            for _ in range(args.rounds):
                start = time.perf_counter()
                prediction = predict_video(
                    runner.model, clip, runner.options, runner.seq_len, runner.settings,
                    runner=runner.backbone,
                )  # fmt: skip
                analysis.append(time.perf_counter() - start)
                start = time.perf_counter()
                with open(clip, "rb") as handle:
                    job = client.post("/api/jobs", data={"video": (handle, clip.name)}).get_json()
                while (job := client.get(f"/api/jobs/{job['id']}").get_json())["state"] not in (
                    "done",
                    "failed",
                ):
                    time.sleep(0.05)
                page.append(time.perf_counter() - start)
                if job["state"] != "done":
                    raise SystemExit(f"the job failed: {job['error']}")
            start = time.perf_counter()
            write_annotated_video([prediction], clip, root / "old.webm", max_width=960)
            render.append(time.perf_counter() - start)
        finally:
            app.cleanup()
    result = {
        "clip": f"640x360, 25 fps, {frames} frames, synthetic",
        "analysis_s": [round(s, 2) for s in analysis],
        "page_s": [round(s, 2) for s in page],
        "page_over_analysis": round(min(page) / min(analysis), 3),
        "render_after_s": round(render[0], 2),
        "old_flow_over_analysis": round((min(analysis) + render[0]) / min(analysis), 3),
        **environment(),
    }
    emit(result, args.json, 24)


if __name__ == "__main__":
    main()
