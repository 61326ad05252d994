"""Evaluate and submit: a checkpoint on a labelled split, predictions' ABAW score, a test set's
submission files (or videos' predictions), and reports on runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abaw_expr.cli.arguments import (
    CHECKPOINT_HELP,
    DEVICE_HELP,
    JSON_HELP,
    engine_arg,
    face_args,
    face_options,
    faces_arg,
    inference_settings,
    shard_arg,
    smooth_arg,
)
from abaw_expr.cli.command import Command, Group, print_result, report_failures
from abaw_expr.errors import InputError


def format_scores(scores: dict) -> str:
    """The ABAW score of any track, with its parts, as lines of text."""
    track = scores.get("track", "expr")
    if track == "mtl":
        return (
            f"P_MTL {scores['score']:.4f} over {scores['frames']} rows\n"
            f"  valence    CCC {scores['ccc_valence']:.4f}\n"
            f"  arousal    CCC {scores['ccc_arousal']:.4f}\n"
            f"  expression F1  {scores['f1_expr']:.4f} ({scores['frames_expr']} rows)\n"
            f"  AUs        F1  {scores['f1_au']:.4f} ({scores['frames_au']} rows)"
        )
    if track == "va":
        return (
            f"mean CCC {scores['score']:.4f} over {scores['frames']} frames\n"
            f"  valence    CCC {scores['ccc_valence']:.4f}\n"
            f"  arousal    CCC {scores['ccc_arousal']:.4f}"
        )
    if track == "au":
        lines = [f"mean AU F1 {scores['score']:.4f} over {scores['frames']} frames"]
        lines += [f"  {name:<10} F1 {f1:.4f}" for name, f1 in scores["f1_per_au"].items()]
        return "\n".join(lines)
    lines = [f"macro F1 {scores['macro_f1']:.4f} over {scores['frames']} frames"]
    lines += [f"  {name:<10} F1 {f1:.4f}" for name, f1 in scores["per_class_f1"].items()]
    return "\n".join(lines)


def _prediction_arguments(p: argparse.ArgumentParser) -> None:
    """The options evaluate and predict share, after their own."""
    p.add_argument("--out", type=Path, required=True, help="output folder for the prediction files")
    p.add_argument(
        "--stride", type=int, help="window step (default: the run's data.eval_stride, 32)"
    )
    smooth_arg(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes (default 2)")
    engine_arg(p)


def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument("--images", type=Path, required=True, help="the cropped_aligned folder")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="one split folder of <video>.txt, of any track the checkpoint predicts, or a "
        "multi-task challenge annotation file",
    )
    p.add_argument(
        "--fit-au-thresholds",
        action="store_true",
        help="an AU split: fit one threshold per AU on it (an optimistic score there), "
        "saved beside the checkpoint for predict",
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    _prediction_arguments(p)


def run_evaluate(args: argparse.Namespace) -> None:
    from abaw_expr.evaluation.evaluate import evaluate

    metrics = evaluate(
        args.checkpoint,
        args.images,
        args.annotations,
        args.out,
        inference_settings(args),
        fit_thresholds=args.fit_au_thresholds,
    )
    run_dir = args.checkpoint.parent
    report = ""
    # a checkpoint of one of our runs: report on both, whichever track was evaluated
    if (run_dir / "run.json").is_file():
        from abaw_expr.report import write_run_report

        path = write_run_report(run_dir, args.out, args.annotations, args.out / "report.html")
        report = f"\nreport: {path}"
    print_result(metrics, args.json, format_scores(metrics) + f"\nwritten to {args.out}{report}")


def score_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="a folder of <video>.txt (ABAW3's layout) or one image_location,... file",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="one split folder of <video>.txt (its header tells the track: EXPR, VA or AU), "
        "a multi-task challenge annotation file, or a C-EXPR-DB labels file "
        "(image_location,Fearfully_Surprised,...) for compound expressions",
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_score(args: argparse.Namespace) -> None:
    from abaw_expr.evaluation.scoring import score_predictions

    scores = score_predictions(args.predictions, args.annotations)
    print_result(scores, args.json, format_scores(scores))


def predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument(
        "--video",
        type=Path,
        help="a video file, or a folder of them: faces are found, tracked and aligned",
    )
    p.add_argument("--images", type=Path, help="a cropped_aligned folder (with --videos)")
    p.add_argument(
        "--videos",
        type=Path,
        help="with --images, a list file: one video per line, 'name' or 'name,frame_count'; "
        "or the multi-task challenge's list of images (video/00012.jpg per line)",
    )
    p.add_argument(
        "--annotated-video",
        action="store_true",
        help="also write <video>.annotated.mp4 with the face box and predictions drawn on",
    )
    p.add_argument(
        "--compound",
        action="store_true",
        help="also C-EXPR-DB's compound-expression file (ABAW6/7), zero-shot from the "
        "expression probabilities; with --video, compound columns in each CSV too",
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="face crops per backbone batch (default 64)"
    )
    shard_arg(p)
    faces_arg(p)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --video: redo videos whose outputs are already in --out",
    )
    face_args(p)
    _prediction_arguments(p)


def run_predict(args: argparse.Namespace) -> int:
    if (args.video is None) == (args.images is None):
        raise InputError("give either --video FILE_OR_DIR, or --images with --videos LIST")
    if args.video is not None:
        return _predict_videos(args)
    if args.shard is not None or args.overwrite:
        raise InputError("--shard and --overwrite go with --video")
    if args.videos is None:
        raise InputError("--images needs --videos, the list of test videos")
    from abaw_expr.evaluation.evaluate import predict_test_set

    n = predict_test_set(
        args.checkpoint, args.images, args.videos, args.out, inference_settings(args),
        compound=args.compound,
    )  # fmt: skip
    print(f"wrote predictions for {n} videos to {args.out}")
    if args.compound:
        print(f"compound expressions: {args.out / 'compound.csv'}")
    return 0


def _predict_videos(args: argparse.Namespace) -> int:
    """``predict --video``: faces found, tracked and aligned, then every frame predicted."""
    from abaw_expr.inference.settings import VideoSettings
    from abaw_expr.video.batch import parse_shard, pending_videos
    from abaw_expr.video.face_process import FacePassProcess

    video_settings = VideoSettings(
        annotated_video=args.annotated_video,
        shard=parse_shard(args.shard),
        overwrite=args.overwrite,
        compound=args.compound,
    )
    settings = inference_settings(args)
    options = face_options(args)
    # The face pass starts now, in a process of its own, and runs while PyTorch imports.
    videos, _, _ = pending_videos(
        args.video, args.out, video_settings.shard, video_settings.overwrite, options.faces
    )
    ahead = FacePassProcess(videos, options) if videos else None

    from abaw_expr.video.predict import predict_videos

    run = predict_videos(
        args.checkpoint, args.video, args.out, options, settings, video_settings, ahead
    )
    for p in run.predictions:
        faces = p.faces
        print(
            f"{p.name}: {faces.num_frames} frames, {int(faces.has_face.sum())} with a face -> "
            f"{args.out / p.name}.csv"
        )
    if run.skipped:
        print(f"{len(run.skipped)} videos already done in {args.out} (--overwrite redoes them)")
    if args.compound:
        from abaw_expr.video.outputs import write_compound_submission

        written = write_compound_submission(args.out)
        if written is not None:
            print(f"compound expressions of {written[1]} videos: {written[0]}")
        for stem in run.skipped:  # finished by a run without --compound
            if not any((args.out / "compound").glob(f"{stem}*.csv")):
                print(
                    f"warning: {stem} has no compound rows (--overwrite redoes it)", file=sys.stderr
                )
    return report_failures(args.command, run.failed)


def report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run folder from 'abaw-expr train'")
    p.add_argument(
        "--eval", type=Path, help="an 'evaluate' output folder (default: RUN/eval or RUN itself)"
    )
    p.add_argument(
        "--annotations",
        type=Path,
        help="the evaluated split's label folder, for timelines (default: from the run's data)",
    )
    p.add_argument("--out", type=Path, help="the HTML file (default RUN/report.html)")


def run_report(args: argparse.Namespace) -> None:
    from abaw_expr.report import write_run_report

    print(write_run_report(args.run, args.eval, args.annotations, args.out))


def compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="+", help="run folders")
    p.add_argument("--html", type=Path, help="also write the table as an HTML page")


def run_compare(args: argparse.Namespace) -> None:
    from abaw_expr.report import compare_runs

    print(compare_runs(args.runs, args.html), end="")


GROUP = Group(
    "Evaluate and submit",
    (
        Command(
            "evaluate",
            "predict a labelled split; write ABAW prediction files and metrics.json",
            evaluate_arguments,
            run_evaluate,
            inputs=(
                ("checkpoint", "file"),
                ("images", "folder"),
                ("annotations", "file or folder"),
            ),
        ),
        Command(
            "score",
            "the ABAW metric of predictions against one split's annotations (any track)",
            score_arguments,
            run_score,
            inputs=(("predictions", "file or folder"), ("annotations", "file or folder")),
        ),
        Command(
            "predict",
            "predict every frame of video files (--video), or of a test list (--images, --videos)",
            predict_arguments,
            run_predict,
            inputs=(
                ("checkpoint", "file"),
                ("video", "file or folder"),
                ("images", "folder"),
                ("videos", "file"),
            ),
        ),
        Command(
            "report",
            "a run's report.html: curves, learning rate, confusion, per-class F1; VA and AU per track",
            report_arguments,
            run_report,
            inputs=(("run", "folder"), ("eval", "folder"), ("annotations", "folder")),
        ),
        Command(
            "compare",
            "runs side by side: config differences, F1, time",
            compare_arguments,
            run_compare,
            inputs=(("runs", "folder"),),
        ),
    ),
)
