"""A procedural, deterministic stand-in for Aff-Wild2 in the ABAW expression-track layout.

:func:`write_sample` writes it, from three parts: :mod:`.sample_plan` plans each video (its
labels and, frame by frame, face parameters and nuisance), :mod:`.sample_face` draws each
frame's face, and this module writes the layout: ``annotations/<split>/<video>.txt``,
``cropped_aligned/<video>/00001.jpg`` and ``sample.json`` (the summary). The same seed gives
byte-identical files.

:mod:`.sample_tasks` adds ABAW's three tracks under ``tracks/``, with valence-arousal and
action units read off the same per-frame parameters, from generators of their own: the images
and the expression files do not depend on them.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from abaw_expr.data.annotations import SPLITS, write_labels
from abaw_expr.errors import InputError
from abaw_expr.synthetic.sample_face import (
    APEX,
    SIZE,
    FaceParams,
    Identity,
    Nuisance,
    draw_face,
    render_face,
)
from abaw_expr.synthetic.sample_plan import VideoPlan, plan_sample
from abaw_expr.synthetic.sample_tasks import write_mtl, write_tasks
from abaw_expr.tasks import CLASS_NAMES, UNANNOTATED
from abaw_expr.writers import atomic_write_json

__all__ = ["APEX", "SIZE", "FaceParams", "Identity", "Nuisance", "render_face", "write_sample"]


def draw_video(plan: VideoPlan) -> Iterator[tuple[int, np.ndarray]]:
    """(0-based frame, (112, 112, 3) uint8 RGB face) of each frame of ``plan`` with an image."""
    rng = np.random.default_rng(plan.noise_seed)
    # Pixel noise: crops of one noise field per video, far cheaper than fresh normals per frame.
    field = rng.standard_normal((2 * SIZE, 2 * SIZE, 3), dtype=np.float32)
    frames = np.flatnonzero(plan.has_image)
    for i, (y, x) in zip(frames, rng.integers(0, SIZE, (len(frames), 2)), strict=True):
        nuisance = Nuisance(*plan.nuisance[i].tolist())
        yield (
            int(i),
            draw_face(plan.params[i], plan.identity, nuisance, field[y : y + SIZE, x : x + SIZE]),
        )


def _render_video(plan: VideoPlan, image_dir: Path) -> int:
    """Write the JPEGs of one video; return how many."""
    image_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for i, face in draw_video(plan):
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="JPEG", quality=90)
        (image_dir / f"{i + 1:05d}.jpg").write_bytes(buffer.getvalue())
        count += 1
    return count


def _prepare_out_dir(out: Path) -> None:
    """Remove an earlier sample here; refuse a folder that holds anything else."""
    ours = {"cropped_aligned", "annotations", "tracks", "mtl", "sample.json"}
    if out.exists():
        if not out.is_dir():
            raise InputError("is a file, expected a folder for the sample data", out)
        others = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in ours and not p.name.startswith(".sample.json.")
        )
        if others:
            raise InputError(
                f"holds {others[0]!r}, so it is not an earlier sample: pick a new or empty folder",
                out,
            )
        # sample.json first, so that a half-replaced sample never looks complete
        (out / "sample.json").unlink(missing_ok=True)
        for name in ("cropped_aligned", "annotations", "tracks", "mtl"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def write_sample(
    out_dir: Path | str,
    train_videos: int = 30,
    val_videos: int = 10,
    frames: int = 300,
    seed: int = 0,
    *,
    workers: int | None = None,
) -> dict:
    """Write the synthetic sample under ``out_dir``; return the summary also written to ``sample.json``.

    ``out_dir`` must be new, empty, or hold an earlier sample (which is replaced). ``workers``
    processes render the images (default: one per CPU, none for small samples); the files do
    not depend on it. ``sample.json`` is written last: its presence means the sample is complete.
    Every class appears in a split of ~11 expression segments (~1000 frames) or more.
    """
    if train_videos < 2 or val_videos < 1 or frames < 100:
        raise InputError(
            f"sample too small: need train_videos >= 2, val_videos >= 1, frames >= 100 "
            f"(got {train_videos}, {val_videos}, {frames})"
        )
    out = Path(out_dir)
    _prepare_out_dir(out)
    plans, quirks = plan_sample(train_videos, val_videos, frames, seed)
    for split, plan in plans:
        write_labels(out / "annotations" / split / f"{plan.name}.txt", plan.labels)
    tasks = write_tasks(out, plans, quirks)
    mtl = write_mtl(out, plans)
    dirs = [out / "cropped_aligned" / plan.name for _, plan in plans]
    if workers is None:
        cpus = os.cpu_count() or 1
        if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use
            cpus = len(os.sched_getaffinity(0))
        workers = min(cpus, 8) if len(plans) * frames >= 3000 else 1
    if workers > 1:
        # fork where we can: spawn re-runs the caller's main script, which breaks scripts without
        # a __main__ guard; the children only use numpy and PIL, so forking is safe.
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            counts = list(pool.map(_render_video, [plan for _, plan in plans], dirs))
    else:
        counts = [_render_video(plan, d) for (_, plan), d in zip(plans, dirs, strict=True)]
    summary: dict = {
        "seed": seed,
        "frames_per_video": frames,
        "image_size": SIZE,
        "splits": {},
        "quirks": quirks,
        "tracks": tasks,
        "mtl": mtl,
    }
    for split in SPLITS:
        chosen = [
            (plan, count) for (s, plan), count in zip(plans, counts, strict=True) if s == split
        ]
        labels = np.concatenate([plan.labels for plan, _ in chosen])
        annotated_missing = sum(
            int(((p.labels >= 0) & ~p.has_image[: len(p.labels)]).sum()) for p, _ in chosen
        )
        summary["splits"][split] = {
            "videos": [plan.name for plan, _ in chosen],
            "frames": len(labels),
            "images": sum(count for _, count in chosen),
            "unannotated": int((labels == UNANNOTATED).sum()),
            "annotated_without_image": annotated_missing,
            "class_frames": {name: int((labels == c).sum()) for c, name in enumerate(CLASS_NAMES)},
        }
    atomic_write_json(out / "sample.json", summary)
    return summary
