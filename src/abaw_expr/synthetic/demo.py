"""``abaw-expr demo``: the whole pipeline on the embedded sample, on a laptop CPU, in minutes.

No ImageNet weights can be assumed offline, and end-to-end training of RegNetY-1.6GF for 30
epochs takes hours on a CPU, so the demo's defaults differ from ``train``'s (the README says
so): the backbone is RegNetY-1.6GF with seeded *random* weights, frozen, and only the
temporal model learns.

1. *Backbone*: build it (random, seeded), set its output standardisation from a subset of
   the training faces (random features are tiny and badly scaled; ImageNet ones are not), and
   save it to ``backbone.safetensors``, so that feature extraction and every checkpoint hold
   the very same weights.
2. *Features*: cache the 888-d feature of every frame at 112 px (``abaw-expr extract``).
3. *Temporal heads, seeded*: train three heads on the cached features, each over 3 seeds
   (``abaw-expr ablate``): the paper's ``combine`` (features + attention + encoder), the
   same with relative positions (``combine+pos``, beyond the paper, opt-in in ``train``;
   docs/heads.md) and the frame-only head (``no_att_trans``); each is one model for ABAW's
   three tracks (expressions, valence-arousal, action units: the sample's ``tracks/``),
   trained on all at once, which costs about what the expression track alone does; the
   paper's loss for expressions, optimiser, scheduler, sequence length 64 and batch 16, for
   8 epochs: what fits the demo's 3 minutes on a 2-core CPU, where a step of the combine head
   takes ~0.23 s (the best epoch is the last for about half of the runs; README).
4. *Evaluate*: each checkpoint on every annotated validation frame, from the cached features
   (the frozen backbone runs once, in stage 2), writing the ABAW prediction files and
   ``metrics.json`` (``runs/<variant>/seed<S>/eval/``); the combine run's ``report.html``,
   ``compare.html`` (every run, and the mean ± std over seeds of each head) and
   ``summary.txt``: every track of the three heads as mean ± std, and per track whether
   relative positions beat the paper's head beyond the seed spread.
5. *A video file*: draw a 640x360 video of a sample face (out of view for a second) and run
   ``predict --video`` on it with the combine checkpoint: faces found by the default detector
   (YuNet), tracked and aligned, then the same model; its CSV, ABAW txt and timeline land in
   ``video/``.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from abaw_expr.config import Config
from abaw_expr.data.frame_index import build_split_index
from abaw_expr.data.images import eval_transform, read_face
from abaw_expr.model.backbone import build_backbone, calibrate_feature_scale
from abaw_expr.report import compare_runs, write_run_report
from abaw_expr.report.compare import text_table
from abaw_expr.synthetic.sample import write_sample
from abaw_expr.tasks import TASKS
from abaw_expr.training.ablation import ablate, pm
from abaw_expr.training.extraction import extract
from abaw_expr.writers import atomic_write, atomic_write_text

# The heads the demo trains, and how its summary names them: the paper's (the default of
# ``train``), the paper's with relative positions (opt-in, ``model.positional=relative``;
# docs/heads.md) and the frame-only head, which shows what the temporal branches add.
HEADS = {
    "combine": "paper",
    "combine+pos": "paper + positions",
    "no_att_trans": "frame only",
}
VARIANTS = tuple(HEADS)

SEEDS = 3
EPOCHS = 8
# A smaller sample than ``abaw-expr sample`` writes (30 + 10 videos): the frozen backbone's
# features cost ~16 ms a frame on a 2-core CPU, and the demo must fit in 3 minutes there.
SAMPLE = {"train_videos": 16, "val_videos": 8, "frames": 200}


def calibration_faces(images: Path, split_dir: Path, every: int = 16) -> torch.Tensor:
    """Every ``every``-th usable training face, normalised: the data that sets the feature scale."""
    transform = eval_transform()
    faces = []
    for video in build_split_index(images, split_dir):
        for frame in np.flatnonzero(video.usable)[::every]:
            face = read_face(video.path(int(frame)), 112)
            if face is not None:
                faces.append(transform(face))
    return torch.stack(faces)


def head_stage_config(variant: str, backbone_file: Path, seed: int, epochs: int) -> Config:
    config = Config()
    config.model.tasks = list(TASKS)  # one model for every task (issue 20)
    config.data.stride = 16  # overlapping training windows: more sequences from few videos
    config.data.num_workers = 0
    config.model.variant = variant
    config.model.backbone_weights = str(backbone_file)
    config.trainer.epochs = epochs
    config.trainer.seed = seed
    config.trainer.log_every_n_steps = 5
    config.trainer.save_last = False  # last.ckpt is for --resume, which the demo never does
    return config


TASK_ROWS = (  # (title, task, key of the arm's task entry)
    ("expression macro F1", "expr", "score_stats"),
    ("valence-arousal mean CCC", "va", "score_stats"),
    ("  CCC valence", "va", "ccc_valence"),
    ("  CCC arousal", "va", "ccc_arousal"),
    ("action units mean F1", "au", "score_stats"),
)


def _stats(arm: dict, task: str | None, key: str = "score_stats") -> dict:
    """An arm's mean/std of one track's ``key`` (the ABAW sum for ``track=None``)."""
    return arm["score"] if task is None else arm["tracks"][task][key]


def difference(arms: dict, arm: str, against: str, task: str | None, key="score_stats") -> str:
    """``+10.0 (beyond the spread)``: the difference of two arms' means in points, and whether
    it exceeds their seed spreads added (sample std), the demo's test of "helps"."""
    a, b = _stats(arms[arm], task, key), _stats(arms[against], task, key)
    delta = 100 * (a["mean"] - b["mean"])
    if a["std"] is None or b["std"] is None:
        return f"{delta:+.1f} (one seed: no spread)"
    spread = 100 * (a["std"] + b["std"])
    return (
        f"{delta:+.1f} ({'beyond' if abs(delta) > spread else 'within'} the spread, {spread:.1f})"
    )


def head_lines(arms: dict) -> list[str]:
    """The summary's part on the heads: every track of every arm as mean ± std over the seeds,
    and the relative positions and the frame-only head against the paper's."""
    names = list(arms)
    seeds = arms[names[0]]["seeds"]
    header = [f"{HEADS.get(a, a)} ({a})" for a in names]
    rows = [
        (title + " %", [pm(_stats(arms[a], task, key)) for a in names])
        for title, task, key in TASK_ROWS
    ]
    rows.append(("ABAW sum of the tracks %", [pm(arms[a]["score"]) for a in names]))
    lines = [
        "one model for the three tracks, trained on all at once, one column per head; "
        f"validation, every annotated frame, mean ± std over seeds {seeds}:",
        *(f"  {line}" for line in text_table(header, rows).rstrip().splitlines()),
    ]
    paper = "combine"
    for other, what in (("combine+pos", "relative positions"), ("no_att_trans", "frame only")):
        if other not in arms or paper not in arms:
            continue
        parts = [
            f"{title.strip()} {difference(arms, other, paper, task, key)}"
            for title, task, key in TASK_ROWS
            if key == "score_stats"
        ]
        parts.append(f"ABAW sum {difference(arms, other, paper, None)}")
        per_seed = [
            f"{100 * (x - y):+.1f}"
            for x, y in zip(arms[other]["macro_f1"], arms[paper]["macro_f1"], strict=True)
        ]
        lines += [
            f"{what} ({other}) against the paper's head (combine), difference of the means in "
            "points, beyond or within the two spreads added:",
            "  " + "; ".join(parts),
            f"  expression macro F1 per seed, {other} - combine: " + ", ".join(per_seed),
        ]
    return lines


def seed_table(run_dirs: list[Path], names: list[str]) -> str:
    """compare's mean ± std over seeds of every figure (per class, per AU), a column per head."""
    from abaw_expr.report.compare import seed_group_rows, seed_groups, summarise_run

    runs = [summarise_run(d) for d in run_dirs]
    groups = seed_groups(runs)
    if not groups:  # one seed: no spread to give
        return ""
    header, rows = seed_group_rows(runs, groups)
    if len(groups) == len(names):  # groups in the order of their first run: the heads'
        header = names
    return text_table(header, rows)


def video_stage(checkpoint: Path, out: Path, seed: int, show: bool = False) -> dict:
    """Write a synthetic 640x360 video (a sample face that leaves for a second), predict every
    frame of it from the file, and score the frames where the face is in view."""
    from abaw_expr.evaluation.metrics import expression_scores
    from abaw_expr.inference.settings import InferenceSettings, VideoSettings
    from abaw_expr.synthetic.video import write_synthetic_video
    from abaw_expr.video.predict import predict_videos

    clip = out / "clip.mp4"
    truth = write_synthetic_video(clip, 200, absent=((81, 105),), seed=seed)
    start = time.time()
    run = predict_videos(
        checkpoint,
        clip,
        out,
        settings=InferenceSettings(device="cpu"),
        video_settings=VideoSettings(progress=show),
    )
    seconds = time.time() - start
    prediction = run.predictions[0]
    found = prediction.faces.has_face
    scores = expression_scores(truth.labels, prediction.labels)  # -1 (out of view) not scored
    return {
        "frames": prediction.faces.num_frames,
        "visible": int(truth.visible.sum()),
        "found": int(found[truth.visible].sum()),
        "invented": int(found[~truth.visible].sum()),
        "macro_f1": scores["macro_f1"],
        "fps": prediction.faces.num_frames / seconds,
    }


def _feature_stage(sample: Path, out: Path, seed: int, show: bool) -> tuple[Path, Path]:
    """Stages 1-2: a seeded random backbone, frozen and saved; the sample's features cached."""
    images, annotations = sample / "cropped_aligned", sample / "annotations"
    torch.manual_seed(seed)
    backbone = build_backbone("none", frozen_stages=5)
    calibrate_feature_scale(backbone, calibration_faces(images, annotations / "Train_Set"))
    backbone_file = out / "backbone.safetensors"
    state = {k: v.contiguous() for k, v in backbone.state_dict().items()}
    atomic_write(backbone_file, lambda tmp: save_file(state, str(tmp)))

    stage_line(show, 2, "the backbone's feature of every frame, cached")
    features = out / "features"
    shutil.rmtree(features, ignore_errors=True)
    # eager (channels-last): on a fresh clone, compiling costs more than it saves on 4,400 frames
    extract(
        images,
        sample / "tracks",
        features,
        str(backbone_file),
        num_workers=1,
        engine="eager",
        progress=show,
    )
    return features, backbone_file


def _head_stage(
    config: Config, tasks: Path, features: Path, runs_dir: Path, seeds: int, show: bool
) -> dict:
    """Stage 3: every head over ``seeds`` seeds on the cached features, each evaluated; the
    ablation's arms."""
    stage_line(
        show,
        3,
        f"{len(VARIANTS)} heads ({', '.join(VARIANTS)}) x {seeds} seeds, one model for the "
        f"{len(TASKS)} tasks each, trained and evaluated",
    )
    shutil.rmtree(runs_dir, ignore_errors=True)
    with stage_bar(show, "heads", len(VARIANTS) * seeds, "run") as bar:
        table = ablate(
            config,
            tasks,
            runs_dir,
            VARIANTS,
            seeds,
            features_dir=features,
            on_run=lambda arm, seed, metrics: bar.update(),
        )
    return table["arms"]


def stage_line(show: bool, number: int, text: str) -> None:
    """The demo's own line for a stage, on stderr (stdout carries the summary)."""
    if show:
        print(f"[{number}/5] {text}", file=sys.stderr, flush=True)


def stage_bar(show: bool, name: str, total: int, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit=unit, disable=not show)


# The loggers of the libraries under the demo; quiet, they say only errors.
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "torch", "matplotlib")


class _OncePerMessage(logging.Filter):
    """Lets each distinct message through once: the demo's nine runs read the same sample."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextmanager
def quiet_libraries(quiet: bool = True):
    """While the demo runs: the libraries beneath it say only errors (no Lightning tips, no
    "GPU available", no deprecation warnings), our modules only warnings, each once.
    ``quiet=False`` (``abaw-expr -v demo``) leaves everything as it is."""
    if not quiet:
        yield
        return
    import lightning.pytorch  # noqa: F401  (importing it sets its loggers' level: ours come after)

    ours = logging.getLogger("abaw_expr")
    levels = {name: logging.getLogger(name).level for name in (*LIBRARY_LOGGERS, ours.name)}
    once = _OncePerMessage()
    handlers = logging.getLogger().handlers
    try:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        ours.setLevel(logging.WARNING)
        for handler in handlers:
            handler.addFilter(once)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            warnings.filterwarnings("default", module="abaw_expr")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for handler in handlers:
            handler.removeFilter(once)


def run_demo(
    out_dir: Path | str,
    epochs: int | None = None,
    seed: int = 0,
    backbone_epochs: int = 3,
    progress: bool = True,
    *,
    sample_size: dict | None = None,
    seeds: int = SEEDS,
    video: bool = True,
    quiet: bool = False,
) -> str:
    """Run the five stages into ``out_dir``; return the text of ``summary.txt``.

    ``progress``: a line and a bar per stage on stderr; ``quiet``: nothing else there
    (:func:`quiet_libraries`). ``sample_size`` (``write_sample``'s sizes; default
    :data:`SAMPLE`), ``seeds`` and ``video=False`` (no video stage) make a smaller demo, for
    the tests."""
    with quiet_libraries(quiet):
        return _run_stages(
            Path(out_dir), epochs or EPOCHS, seed, progress, sample_size or SAMPLE, seeds, video
        )


def _run_stages(
    out: Path, epochs: int, seed: int, show: bool, size: dict, seeds: int, video: bool
) -> str:
    started = time.time()
    sample = out / "sample"
    stage_line(
        show,
        1,
        f"the synthetic sample ({size['train_videos']} + {size['val_videos']} videos of "
        f"{size['frames']} frames) and a seeded random RegNetY-1.6GF backbone, frozen",
    )
    if not (sample / "sample.json").is_file():
        write_sample(sample, seed=seed, **size)
    tasks = sample / "tracks"  # the three tasks in ABAW's layout
    timings = {}

    t = time.time()
    features, backbone_file = _feature_stage(sample, out, seed, show)
    timings["features"] = time.time() - t

    t = time.time()
    runs_dir = out / "runs"
    config = head_stage_config("combine", backbone_file, seed, epochs)
    arms = _head_stage(config, tasks, features, runs_dir, seeds, show)
    timings["train+evaluate"] = time.time() - t
    first = {v: runs_dir / v / f"seed{seed}" for v in VARIANTS}
    best = out / "best.ckpt"
    atomic_write(best, lambda tmp: shutil.copyfile(first["combine"] / "best.ckpt", tmp))
    stage_line(show, 4, "report.html (the paper's head, seed 0) and compare.html (every run)")
    write_run_report(first["combine"], out=out / "report.html")  # finds its eval/
    all_runs = [runs_dir / v / f"seed{s}" for v in VARIANTS for s in arms[v]["seeds"]]
    compare_runs(all_runs, out / "compare.html")

    lines = ["abaw-expr demo on the embedded synthetic sample (not Aff-Wild2)", *head_lines(arms)]
    if video:
        t = time.time()
        stage_line(show, 5, "a drawn 640x360 video through 'predict --video' with that model")
        clip = video_stage(best, out / "video", seed, show)
        timings["video"] = time.time() - t
        lines.append(
            f"video file: {clip['frames']} frames at 640x360, the face found in {clip['found']} of the {clip['visible']} where it is in view, {clip['invented']} where it is not; "
            f"macro F1 against the drawn expressions {clip['macro_f1']:.4f} ({clip['fps']:.0f} frames/s)"
        )
    lines += [
        "mean ± std over seeds, per class and per AU (compare.html has each run too):",
        *(f"  {line}" for line in seed_table(all_runs, list(VARIANTS)).rstrip().splitlines()),
        "seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        + f", total {time.time() - started:.0f}",
        f"outputs: {out / 'report.html'}, {out / 'compare.html'}, {best} (combine, seed {seed}), {runs_dir}/<variant>/seed<S>/eval/ (metrics.json, predictions/), {runs_dir / 'ablation.txt'}, {out / 'video'}/ (clip.csv, .txt, .png)",
    ]
    summary = "\n".join(lines)
    atomic_write_text(out / "summary.txt", summary + "\n")
    return summary
