"""A temporal probe with a known answer: synthetic 888-d feature sequences in the cache format.

Each video is a run of labelled segments, Neutral stretches alternating with expression
segments, longer than the model's window as Aff-Wild2's often are. A frame's feature is
``class_mean[label] + noise``, except for a share of *uninformative* frames inside every
segment whose feature is noise alone (the background distribution) while they keep their
segment's label, as annotators label through blinks, occlusions and turned heads. On those
frames a frame-only model cannot beat the class prior; a model that looks at the frames
around them can.

With ``neutral_looks_background`` the Neutral class has no mean of its own: Neutral frames
look like the background too. An uninformative frame inside an expression segment then looks
exactly like the Neutral stretch beside it, and only *where* it sits in its window says which
it belongs to: the case a model without positional information cannot resolve.

With ``bursts=(lo, hi)`` the uninformative frames come in runs of ``lo..hi`` frames instead of
one by one, as the sample's faces lapse to the rest face for 4 to 12 frames at a time (a look
away, a pause): a frame's near neighbours are then often uninformative too.

The probe is written with :class:`~abaw_expr.data.feature_cache.CacheWriter`, so it trains
through ``train --features`` like a real cache. ``probe.npz`` beside each split's
``index.npz`` holds the per-frame masks (``uninformative``, ``uninformative_in_expression``)
that say which frames to score separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abaw_expr.data.feature_cache import FEATURE_DIM, CacheWriter
from abaw_expr.data.frame_index import FrameIndex, VideoFrames
from abaw_expr.tasks import NUM_CLASSES
from abaw_expr.writers import atomic_write

PROBE_FILE = "probe.npz"


@dataclass
class ProbeSpec:
    """How the probe is drawn; the defaults are the benchmark's probe."""

    train_videos: int = 12
    val_videos: int = 6
    frames: int = 320  # per video
    segment: tuple[int, int] = (80, 160)  # segment length range, frames (window: 64)
    uninformative: float = 0.4  # share of frames inside each segment that are background
    signal: float = 4.0  # norm of each class mean; the background is N(0, I)
    neutral_looks_background: bool = False
    # Uninformative frames in runs of lo..hi frames (None: each frame on its own)
    bursts: tuple[int, int] | None = None
    seed: int = 0


def _labels(rng: np.random.Generator, spec: ProbeSpec) -> np.ndarray:
    """Neutral and expression segments in turn, starting with either."""
    labels = np.empty(spec.frames, dtype=np.int64)
    pos, neutral = 0, bool(rng.integers(2))
    while pos < spec.frames:
        length = int(rng.integers(spec.segment[0], spec.segment[1] + 1))
        labels[pos : pos + length] = 0 if neutral else int(rng.integers(1, NUM_CLASSES))
        pos += length
        neutral = not neutral
    return labels


def _uninformative(rng: np.random.Generator, spec: ProbeSpec) -> np.ndarray:
    """Which frames are background: each on its own with probability ``spec.uninformative``,
    or with ``spec.bursts`` runs of ``lo..hi`` frames starting at a rate that covers about
    that share of the frames (runs may overlap)."""
    if spec.bursts is None:
        return rng.random(spec.frames) < spec.uninformative
    lo, hi = spec.bursts
    rate = -np.log1p(-spec.uninformative) / ((lo + hi) / 2)  # coverage 1 - exp(-rate * mean)
    blank = np.zeros(spec.frames, dtype=bool)
    for start in np.flatnonzero(rng.random(spec.frames) < rate):
        blank[start : start + int(rng.integers(lo, hi + 1))] = True
    return blank


def class_means(spec: ProbeSpec) -> np.ndarray:
    """(8, 888) class means of norm ``spec.signal``; Neutral's is zero if it looks like the
    background. Drawn from the seed alone, so both splits share them."""
    rng = np.random.default_rng([spec.seed, 1])
    means = rng.standard_normal((NUM_CLASSES, FEATURE_DIM))
    means *= spec.signal / np.linalg.norm(means, axis=1, keepdims=True)
    if spec.neutral_looks_background:
        means[0] = 0.0
    return means


def write_probe(out_dir: Path | str, spec: ProbeSpec, backbone_id: str) -> dict[str, int]:
    """Write ``out_dir/Train_Set`` and ``out_dir/Validation_Set`` as feature caches.

    ``backbone_id`` is recorded as the backbone that "made" the features: training needs a
    backbone file with that id (any saved backbone; its weights never touch the probe).
    Returns the number of frames and of uninformative frames per split.
    """
    out_dir = Path(out_dir)
    means = class_means(spec)
    summary = {}
    for split_no, (split, count) in enumerate(
        (("Train_Set", spec.train_videos), ("Validation_Set", spec.val_videos))
    ):
        rng = np.random.default_rng([spec.seed, 2, split_no])
        split_dir = out_dir / split
        videos, rows, background = [], [], []
        for v in range(count):
            labels = _labels(rng, spec)
            blank = _uninformative(rng, spec)
            if spec.neutral_looks_background:
                blank |= labels == 0
            noise = rng.standard_normal((spec.frames, FEATURE_DIM))
            rows.append(np.where(blank[:, None], 0.0, means[labels]) + noise)
            background.append(blank)
            name = f"probe{split_no}_{v:03d}"
            videos.append(
                VideoFrames(name, split_dir / name, labels, np.ones(spec.frames, dtype=bool), split)
            )
        writer = CacheWriter(split_dir, FrameIndex(videos), backbone_id, split_dir)
        for pos in writer.pending:
            start = int(writer.offsets[pos])
            ids = np.arange(start, start + spec.frames)
            writer.write(ids, rows[pos], np.ones(spec.frames, dtype=bool))
            writer.finish(pos)
        labels = np.concatenate([v.labels for v in videos])
        uninformative = np.concatenate(background)

        def save(tmp: Path, labels=labels, uninformative=uninformative) -> None:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    uninformative=uninformative,
                    uninformative_in_expression=uninformative & (labels != 0),
                )

        atomic_write(split_dir / PROBE_FILE, save)
        summary[split] = {"frames": int(labels.size), "uninformative": int(uninformative.sum())}
    return summary


def read_probe_masks(split_dir: Path | str) -> dict[str, np.ndarray]:
    """The per-frame masks of a probe split, in cache row order (videos concatenated)."""
    with np.load(Path(split_dir) / PROBE_FILE, allow_pickle=False) as data:
        return {key: data[key].astype(bool) for key in data.files}
