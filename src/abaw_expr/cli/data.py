"""Get data ready: the sample data set, a data set's counts, videos to face crops, and the
backbone's features cached for head-only training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from abaw_expr.cli.arguments import (
    DEVICE_HELP,
    JSON_HELP,
    config_args,
    engine_arg,
    engine_of,
    face_args,
    face_options,
    faces_arg,
    load_config,
    shard_arg,
)
from abaw_expr.cli.command import Command, Group, print_result, report_failures

ANNOTATIONS_HELP = (
    "folder holding Train_Set/ and Validation_Set/, or ABAW's track folders, or the multi-task "
    "challenge's annotation file or its folder"
)


def sample_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="a new or empty folder, or an earlier sample (which is replaced)",
    )
    p.add_argument("--videos", type=int, default=30, help="training videos (default 30)")
    p.add_argument("--val-videos", type=int, default=10, help="validation videos (default 10)")
    p.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    p.add_argument(
        "--seed", type=int, default=0, help="the same seed writes the same files (default 0)"
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_sample(args: argparse.Namespace) -> None:
    import time

    from abaw_expr.synthetic.sample import write_sample

    started = time.time()
    summary = write_sample(
        args.out,
        train_videos=args.videos,
        val_videos=args.val_videos,
        frames=args.frames,
        seed=args.seed,
    )
    print_result(
        summary,
        args.json,
        f"wrote the sample data set to {args.out} in {time.time() - started:.1f} s",
    )


def stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=Path, required=True, help="the cropped_aligned folder")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help=ANNOTATIONS_HELP,
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run_stats(args: argparse.Namespace) -> None:
    from abaw_expr.data.frame_index import build_split_index
    from abaw_expr.data.task_index import find_tasks, is_mtl

    tasks = find_tasks(args.annotations)
    if list(tasks) != ["expr"] or is_mtl(tasks):
        _print_task_stats(args, tasks)
        return
    result = {
        split: build_split_index(args.images, d).stats() for split, d in tasks["expr"].items()
    }
    if args.json:
        print(json.dumps(result))
        return
    for split, s in result.items():
        print(
            f"{split}: {s['videos']} videos, {s['frames']} frames, {s['annotated']} annotated, {s['usable']} usable"
        )
        total = max(s["usable"], 1)
        for name, count in s["per_class"].items():
            print(f"  {name:<10} {count:>9}  {100 * count / total:5.1f} %")
        absent = [name for name, count in s["per_class"].items() if count == 0]
        if absent:
            print(
                f"  absent: {', '.join(absent)} (F1 0 in ABAW's scoring: macro F1 <= {8 - len(absent)}/8)"
            )


def _print_task_stats(args: argparse.Namespace, tasks: dict) -> None:
    """``stats`` of several tracks (or one other than expressions): per split and track."""
    from abaw_expr.data.task_index import build_task_index, task_stats

    indexes = build_task_index(args.images, tasks)
    result = {split: task_stats(index, list(tasks)) for split, index in indexes.items()}
    if args.json:
        print(json.dumps(result))
        return
    for split, by_task in result.items():
        print(f"{split}: {len(indexes[split])} videos")
        for task, s in by_task.items():
            line = f"  {task:<4} {s['videos']} videos, {s['annotated']} annotated, {s['usable']} usable"
            if "mean" in s:
                line += f"; mean valence {s['mean']['valence']:+.3f}, arousal {s['mean']['arousal']:+.3f}"
            print(line)
            if "positive" in s:
                total = max(s["usable"], 1)
                rates = ", ".join(f"{au} {100 * n / total:.0f}%" for au, n in s["positive"].items())
                print(f"       positive: {rates}")
            if "per_class" in s:
                print("       " + ", ".join(f"{k} {v}" for k, v in s["per_class"].items()))


def preprocess_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", type=Path, required=True, help="a video file or a folder of them")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for cropped_aligned/<video>/ (the face crops) and faces/<video>.json",
    )
    shard_arg(p)
    faces_arg(p)
    face_args(p)


def run_preprocess(args: argparse.Namespace) -> int:
    from abaw_expr.video.batch import parse_shard
    from abaw_expr.video.preprocess import preprocess_videos

    result = preprocess_videos(
        args.video, args.out, face_options(args), progress=True, shard=parse_shard(args.shard)
    )
    print(
        f"{len(result.done)} videos written, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed -> {args.out / 'cropped_aligned'}"
    )
    return report_failures(args.command, result.failed)


def test_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", type=Path, required=True, help="the folder of source videos")
    p.add_argument("--out", type=Path, required=True, help="the list to write: name,frame_count")
    p.add_argument(
        "--names",
        type=Path,
        help="ABAW's list of test names: one line each, <name>_left and <name>_right "
        "counted from <name>'s video (default: every video of the folder, by its name)",
    )


def run_test_list(args: argparse.Namespace) -> None:
    from abaw_expr.video.frame_counts import write_test_list

    counts = write_test_list(args.videos, args.out, args.names)
    print(f"{len(counts)} videos, {sum(counts.values())} frames -> {args.out}")


def extract_arguments(p: argparse.ArgumentParser) -> None:
    config_args(p)
    p.add_argument("--images", type=Path, required=True, help="the cropped_aligned folder")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help=ANNOTATIONS_HELP,
    )
    p.add_argument("--out", type=Path, required=True, help="cache folder")
    p.add_argument(
        "--batch-size", type=int, default=128, help="face images per backbone batch (default 128)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes (default 2)")
    p.add_argument(
        "--seed",
        type=int,
        help="--backbone-weights none: the seed of the random backbone (default: trainer.seed, 42)",
    )
    engine_arg(p)


def run_extract(args: argparse.Namespace) -> None:
    from abaw_expr.model.build import backbone_seed
    from abaw_expr.training.extraction import extract

    config = load_config(args)
    extract(
        args.images,
        args.annotations,
        args.out,
        config.model.backbone_weights,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.workers,
        engine=engine_of(args),
        backbone=config.model.backbone,
        seed=backbone_seed(config),
    )
    print(f"features written to {args.out}")


GROUP = Group(
    "Get data ready",
    (
        Command(
            "sample",
            "write the synthetic sample data set in the Aff-Wild2 layout",
            sample_arguments,
            run_sample,
        ),
        Command(
            "stats",
            "count videos, frames and classes of each split",
            stats_arguments,
            run_stats,
            inputs=(("images", "folder"), ("annotations", "file or folder")),
        ),
        Command(
            "preprocess",
            "videos -> cropped_aligned/<video>/00001.jpg (ABAW layout) + faces/<video>.json",
            preprocess_arguments,
            run_preprocess,
            inputs=(("video", "file or folder"),),
        ),
        Command(
            "test-list",
            "a test set's name,frame_count list, frames counted by decoding its source videos",
            test_list_arguments,
            run_test_list,
            inputs=(("videos", "folder"), ("names", "file")),
        ),
        Command(
            "extract",
            "compute backbone features once for head-only training",
            extract_arguments,
            run_extract,
            inputs=(
                ("config", "file"),
                ("images", "folder"),
                ("annotations", "file or folder"),
                ("backbone_weights", "weights"),
            ),
        ),
    ),
)
