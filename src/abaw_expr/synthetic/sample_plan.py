"""Planning the sample's videos (:mod:`.sample`): labels and, frame by frame, face parameters,
nuisance and whether there is a face image. Nothing is drawn here.

Expressions are animated in onset / apex / offset segments between Neutral stretches. Inside
expression segments about 30 % of the frames *lapse* to the rest face in runs of 4..12 frames
(a look away, a pause) while keeping the segment's label, as Aff-Wild2's annotators label
through blinks, occlusions and turned heads: on those frames a single frame does not say it
all. The plans carry the quirks of the real data: Neutral-heavy labels, runs of -1, frames
without a face image, a ``_left`` / ``_right`` pair, and a label file and an image folder of
different lengths. Every draw comes from a generator seeded by (seed, split, purpose, video).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from abaw_expr.data.annotations import SPLITS
from abaw_expr.synthetic.sample_face import Identity, Nuisance
from abaw_expr.tasks import UNANNOTATED

# Share of an expression segment's frames that lapse to the rest face (label kept).
LAPSE_SHARE = 0.3
# Expression segments take their class from a per-split bag, refilled when empty, so that every
# class turns up in every split by construction. In training the rare ones (Anger, Disgust,
# Fear) come 2/3 as often as the others; validation is balanced, for a steadier macro-F1.
_CLASS_BAGS = ((1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7), (1, 2, 3, 4, 5, 6, 7))


@dataclass
class VideoPlan:
    """All of one video but its pixels: :mod:`.sample` draws and writes it, :mod:`.sample_tasks`
    reads its VA and AU labels off ``params``."""

    name: str
    identity: Identity
    labels: np.ndarray  # int8, one per label line
    params: np.ndarray  # (frames, len(FaceParams)) float32, one row per video frame
    nuisance: np.ndarray  # (frames, len(Nuisance)) float32
    has_image: np.ndarray  # bool, per video frame
    noise_seed: tuple[int, ...]
    task_seed: tuple[int, ...] = ()


class _ClassBag:
    """Draws segment classes from a bag, refilled and reshuffled when empty."""

    def __init__(self, rng: np.random.Generator, bag: tuple[int, ...]):
        self.rng, self.bag, self.items = rng, bag, []

    def next(self) -> int:
        if not self.items:
            self.items = self.rng.permutation(self.bag).tolist()
        return self.items.pop()


def _smooth(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance noise smoothed over about ``width`` frames: a slow drift."""
    x = np.convolve(rng.standard_normal(n + 2 * width), np.hanning(width + 2)[1:-1], mode="same")
    x = x[width : width + n]
    return (x / (x.std() + 1e-9)).astype(np.float32)


def _runs(rng: np.random.Generator, n: int, count: int, low: int, high: int) -> list[slice]:
    """``count`` random runs of ``low`` to ``high - 1`` frames inside [0, n)."""
    runs = []
    for _ in range(count):
        length = int(rng.integers(low, high))
        start = int(rng.integers(0, max(n - length, 1)))
        runs.append(slice(start, min(start + length, n)))
    return runs


def _plan_video(
    name: str,
    rng: np.random.Generator,
    bag: _ClassBag,
    frames: int,
    extra_images: int,
    quirks: set[str],
) -> VideoPlan:
    """Labels, per-frame face parameters and nuisance, and image presence of one video."""
    idt = Identity.random(rng)
    n = frames + extra_images
    rest = np.asarray(idt.rest, np.float32)
    labels, env, apex = np.zeros(n, np.int8), np.zeros(n, np.float32), np.tile(rest, (n, 1))
    pos = int(rng.integers(5, 40))
    while pos < n:  # expression segments (onset, apex, offset) between Neutral stretches
        length, label = int(rng.integers(20, 81)), bag.next()
        onset, offset = (max(2, round(length * rng.uniform(0.05, 0.15))) for _ in range(2))
        ramp = np.ones(length, np.float32)
        ramp[:onset] = np.linspace(0, 1, onset + 1, dtype=np.float32)[1:]
        ramp[length - offset :] = np.linspace(1, 0, offset + 1, dtype=np.float32)[:-1]
        # Lapses: runs inside the segment where the face is at rest (a look away, a pause) while
        # the annotation keeps the segment's label, as Aff-Wild2's annotators label through them.
        # About LAPSE_SHARE of the apex frames: those frames alone look Neutral.
        for run in _runs(rng, length - onset - offset, round(LAPSE_SHARE * length / 8), 4, 13):
            ramp[onset + run.start : onset + run.stop] = 0.0
        seg = slice(pos, min(pos + length, n))
        labels[seg], apex[seg] = label, idt.apex(label)
        env[seg] = (ramp * ramp * (3 - 2 * ramp))[: seg.stop - pos]
        pos += length + int(rng.integers(15, 61))
    params = rest + env[:, None] * (apex - rest)
    params += 0.04 * np.stack([_smooth(rng, n, 9) for _ in rest], axis=1)
    if rng.random() < 0.4:  # talking: the mouth moves in Neutral stretches too
        params[:, 1] += 0.08 * np.clip(_smooth(rng, n, 3), 0, 2)
    blink = int(rng.integers(10, 60))
    while blink < n:
        params[blink : blink + int(rng.integers(2, 4)), 10] *= 0.1
        blink += int(rng.integers(40, 120))
    nuis = np.zeros((n, len(fields(Nuisance))), np.float32)
    drifts = ((1.2, 25), (1.2, 25), (2.5, 40), (0.02, 40), (0.08, 60), (0.12, 80), (0.12, 80))
    for col, (amplitude, width) in enumerate(drifts):  # dx, dy, angle, scale, light
        nuis[:, col] = amplitude * _smooth(rng, n, width)
    nuis[:, 3] += 1.0
    nuis[:, 4] += rng.uniform(0.85, 1.15)
    nuis[:, 7] = rng.uniform(-0.06, 0.06)  # warmth
    nuis[:, 8] = rng.uniform(0, 0.7) + 0.6 * (rng.random(n) < 0.04)  # blur, with motion blips
    nuis[:, 9] = rng.uniform(1.5, 6)  # noise
    for run in _runs(rng, n, int(rng.poisson(0.8)), 4, 13):
        nuis[run, 10:] = (
            rng.integers(1, 3),
            rng.uniform(30, 82),
            rng.uniform(40, 100),
            rng.uniform(-40, 40),
        )
    has_image = rng.random(n) >= 0.006  # single detector misses; those frames stay annotated
    for run in _runs(rng, n, int(rng.random() < 0.5) + ("annotated_missing" in quirks), 3, 21):
        has_image[run] = False
        if "annotated_missing" not in quirks:  # the face is gone, and so is the annotation
            labels[run] = UNANNOTATED
    for run in _runs(rng, n, int(rng.random() < 0.35) + ("unannotated" in quirks), 10, 41):
        labels[run] = UNANNOTATED
    has_image[frames:] = True
    if "labels_longer" in quirks:
        has_image[frames - int(rng.integers(10, 31)) :] = False
    return VideoPlan(name, idt, labels[:frames], params, nuis, has_image, ())


def _video_names(train: int, val: int) -> tuple[list[str], list[str], int]:
    """Names like the real data; training videos ``pair`` and ``pair + 1`` are ``_left`` / ``_right``."""
    pair = train // 2 - 1
    names = []
    for k in range(train):
        suffix = "_left" if k == pair else "_right" if k == pair + 1 else ""
        names.append(f"video_{k + 1 if k <= pair else k:03d}{suffix}")
    return names, [f"video_{train + k:03d}" for k in range(val)], pair


def plan_sample(
    train_videos: int, val_videos: int, frames: int, seed: int
) -> tuple[list[tuple[str, VideoPlan]], dict[str, list[str]]]:
    """Every video's plan, with its split, in writing order; and the quirks, by video name."""
    train_names, val_names, pair = _video_names(train_videos, val_videos)
    quirks: dict[str, list[str]] = {"left_right_pair": train_names[pair : pair + 2]}
    plans: list[tuple[str, VideoPlan]] = []
    for split_id, (split, names) in enumerate(zip(SPLITS, (train_names, val_names), strict=True)):
        bag = _ClassBag(np.random.default_rng([seed, split_id, 1]), _CLASS_BAGS[split_id])
        for k, name in enumerate(names):
            special = {"unannotated"} if k == 0 else {"annotated_missing"} if k == 1 else set()
            extra = 0
            if k == len(names) - 1 and split_id == 0:
                special.add("labels_longer")
            elif k == len(names) - 1:
                special.add("images_longer")
                extra = int(np.random.default_rng([seed, split_id, 3, k]).integers(5, 21))
            plan = _plan_video(
                name, np.random.default_rng([seed, split_id, 0, k]), bag, frames, extra, special
            )
            plan.noise_seed = (seed, split_id, 2, k)
            plan.task_seed = (seed, split_id, 4, k)  # the VA / AU tracks' own draws
            plans.append((split, plan))
            for quirk in sorted(special):
                quirks.setdefault(quirk, []).append(name)
    return plans, quirks
