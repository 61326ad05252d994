"""Your own videos: a local web page to upload one to, and the model exported to ONNX.
(``predict --video``, in :mod:`.evaluate`, serves here too.)"""

from __future__ import annotations

import argparse
from pathlib import Path

from abaw_expr.cli.arguments import (
    CHECKPOINT_HELP,
    DEVICE_HELP,
    face_args,
    face_options,
    faces_arg,
    inference_settings,
    smooth_arg,
)
from abaw_expr.cli.command import Command, Group


def serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: this machine only")
    p.add_argument("--port", type=int, default=8000, help="default 8000; 0: any free port")
    p.add_argument(
        "--max-upload-mb", type=int, default=500, help="largest video accepted (default 500 MB)"
    )
    smooth_arg(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    faces_arg(p)  # every person by default, as predict --video
    face_args(p)


def run_serve(args: argparse.Namespace) -> None:
    from abaw_expr.serve import serve

    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        options=face_options(args),
        settings=inference_settings(args),
    )


def live_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument(
        "--source",
        required=True,
        help="a camera index (0), a device (/dev/video0), a stream URL (rtsp://, http://) "
        "or a video file",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="folder of one CSV per person and live.json"
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="a file: deliver its frames at its own rate, as a camera would (frames the model "
        "cannot keep up with are dropped); without it every frame of a file is predicted",
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    face_args(p)


def run_live(args: argparse.Namespace) -> int:
    from abaw_expr.video.live.run import run_live

    options = face_options(args)
    options.faces = "all"  # live follows every person
    record = run_live(
        args.checkpoint,
        args.source,
        args.out,
        options=options,
        settings=inference_settings(args),
        realtime=args.realtime,
    )
    print(
        f"{record['frames_processed']} of {record['frames_in']} frames predicted "
        f"({record['frames_dropped']} dropped), {len(record['people'])} people, latency "
        f"{record['latency_ms_p50']} ms (p95 {record['latency_ms_p95']}); {args.out}"
    )
    return 0


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18, help="the ONNX opset (default 18)")


def run_export(args: argparse.Namespace) -> None:
    from abaw_expr.inference.export import export_onnx

    info = export_onnx(args.checkpoint, args.out, opset=args.opset)
    print(
        f"wrote {args.out}: frames (B, T, 3, {info['image_size']}, {info['image_size']}) + mask (B, T) -> logits (B, T, {max(stop for _, stop in info['outputs'].values())})"
        + ("" if list(info["outputs"]) == ["expr"] else f"; along the last axis {info['outputs']}")
    )


GROUP = Group(
    "Your own videos",
    (
        Command(
            "serve",
            "a local web page: upload a video, watch every person's expression timeline",
            serve_arguments,
            run_serve,
            inputs=(("checkpoint", "file"),),
        ),
        Command(
            "live",
            "every person's expressions from a camera, stream or file as they happen",
            live_arguments,
            run_live,
            inputs=(("checkpoint", "file"),),
        ),
        Command(
            "export",
            "export a checkpoint's whole sequence model to ONNX",
            export_arguments,
            run_export,
            inputs=(("checkpoint", "file"),),
        ),
    ),
    also=(
        (
            "predict --video",
            "faces found, tracked and aligned in a video file or folder; per-frame CSV, "
            "timeline plot, --annotated-video",
        ),
    ),
)
