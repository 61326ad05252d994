"""A procedural, deterministic stand-in for Aff-Wild2 in the ABAW expression-track layout.

Cartoon faces (112x112, placed like ArcFace-aligned crops) whose expression is set by a few
facial parameters, animated in onset / apex / offset segments between Neutral stretches. Beside
the shapes (mouth, brows, eyes, nose wrinkles), each class but Surprise has a cartoon colour cue
(a tinted face, blushing cheeks, tears, ...) so that even the features of a randomly
initialised backbone separate the classes. Inside expression segments about 30 % of the
frames *lapse* to the rest face in runs of 4..12 frames (a look away, a pause) while keeping
the segment's label, as Aff-Wild2's annotators label through blinks, occlusions and turned
heads: on those frames a single frame does not say it all. The files carry the quirks of the real data: Neutral-heavy labels, runs
of -1, frames without a face image, a ``_left`` / ``_right`` pair, and a label file and an
image folder of different lengths. The same seed gives byte-identical files.

:mod:`.sample_tracks` adds ABAW's three tracks under ``tracks/``, with valence-arousal and
action units read off the same per-frame parameters, from generators of their own: the images
and the expression files do not depend on them.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import CLASS_NAMES, NUM_CLASSES, UNANNOTATED
from ..errors import InputError
from ..writers import atomic_write_json
from .annotations import SPLITS, write_labels

SIZE = 112
_M = 12  # canvas margin, so that pose jitter never shows the canvas edge
_GRID = np.arange(SIZE + 2 * _M, dtype=np.float32) - _M  # canvas index -> face coordinate
_CX, _CY = SIZE / 2, 62.0  # face centre
# Expression segments take their class from a per-split bag, refilled when empty, so that every
# class turns up in every split by construction. In training the rare ones (Anger, Disgust,
# Fear) come 2/3 as often as the others; validation is balanced, for a steadier macro-F1.
# Share of an expression segment's frames that lapse to the rest face (label kept).
LAPSE_SHARE = 0.3
_CLASS_BAGS = ((1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7), (1, 2, 3, 4, 5, 6, 7))

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class FaceParams:
    """Expression parameters; the defaults are the rest (Neutral) face."""

    smile: float = 0.0  # mouth corners up (+) or down (-)
    mouth_open: float = 0.0
    mouth_width: float = 1.0
    lip_press: float = 0.0  # thin, pressed lips
    lip_raise: float = 0.0  # upper lip raised
    mouth_skew: float = 0.0  # one corner up: a smirk
    teeth: float = 0.0
    brow_raise: float = 0.0
    brow_tilt: float = 0.0  # inner ends up (+, sad / afraid) or down and inward (-, angry)
    brow_skew: float = 0.0  # one brow up, the other down
    eye_open: float = 1.0
    nose_wrinkle: float = 0.0
    # Cartoon colour cues, 0..1: a tint of the face, with blushing cheeks, tears, a tongue.
    flush: float = 0.0  # red (anger)
    queasy: float = 0.0  # yellow-green (disgust)
    pallor: float = 0.0  # violet (fear)
    glow: float = 0.0  # pink, blushing cheeks (happiness)
    gloom: float = 0.0  # blue, tears (sadness)
    smug: float = 0.0  # cyan, tongue out (other)

    def array(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float32)


_REST = FaceParams().array()
_SKEWS = [i for i, f in enumerate(fields(FaceParams)) if f.name in ("mouth_skew", "brow_skew")]
APEX: dict[int, FaceParams] = {
    0: FaceParams(),
    1: FaceParams(
        brow_raise=-0.9,
        brow_tilt=-1.0,
        eye_open=0.55,
        lip_press=1.0,
        mouth_width=0.85,
        smile=-0.25,
        flush=1.0,
    ),
    2: FaceParams(
        nose_wrinkle=1.0,
        lip_raise=1.0,
        teeth=0.8,
        brow_raise=-0.45,
        brow_tilt=-0.25,
        eye_open=0.65,
        smile=-0.5,
        mouth_width=0.95,
        queasy=1.0,
    ),
    3: FaceParams(
        brow_raise=0.6,
        brow_tilt=0.9,
        eye_open=1.65,
        mouth_open=0.45,
        mouth_width=1.25,
        smile=-0.35,
        teeth=0.3,
        pallor=1.0,
    ),
    4: FaceParams(
        smile=1.0,
        mouth_open=0.35,
        mouth_width=1.2,
        teeth=1.0,
        eye_open=0.7,
        brow_raise=0.1,
        glow=1.0,
    ),
    5: FaceParams(
        smile=-0.9,
        lip_press=0.35,
        brow_tilt=1.0,
        brow_raise=0.05,
        eye_open=0.7,
        mouth_width=0.92,
        gloom=1.0,
    ),
    6: FaceParams(brow_raise=1.0, eye_open=1.75, mouth_open=1.0, mouth_width=0.72),
    7: FaceParams(
        mouth_skew=1.0, brow_skew=1.0, smile=0.1, eye_open=0.85, mouth_width=1.05, smug=1.0
    ),
}
"""Typical apex parameters of each class (index as in :data:`abaw_expr.classes.CLASS_NAMES`)."""


def _palette(hex_colours: str) -> tuple[Colour, ...]:
    return tuple((int(c[:2], 16), int(c[2:4], 16), int(c[4:], 16)) for c in hex_colours.split())


# Face tints of the colour cues, in FaceParams order: flush, queasy, pallor, glow, gloom, smug.
_TINTS = _palette("dc1e1e 96c81e aa5ae6 ff50aa 3246e6 1ec8dc")
_SKINS = _palette("f1c2a7 e8bea0 e0ac8a d2a078 c68667 a1664a 784e38 5a3a2a")
_HAIRS = _palette("191412 3c281c 6e4b2d c8a564 964623 969696")
_IRISES = _palette("462d19 281e19 466e96 506e46")


@dataclass(frozen=True)
class Identity:
    """What stays fixed within a video: the person's looks, the backdrop, the expression style."""

    skin: Colour
    hair: Colour
    brow: Colour
    iris: Colour
    lips: Colour
    shirt: Colour
    background: tuple[Colour, Colour, Colour, Colour]  # corners: TL, TR, BL, BR
    face_rx: float
    face_ry: float
    hair_style: int  # 0 short, 1 long, 2 curly, 3 cropped
    fringe: float  # lowest y of the fringe; 0 = none
    brow_width: float
    mouth_scale: float
    lip_scale: float
    smirk_side: int  # which way the "Other" smirk goes
    intensity: tuple[float, ...]  # per class: scales the apex
    rest: tuple[float, ...]  # the resting face, in FaceParams order

    @classmethod
    def random(cls, rng: np.random.Generator) -> Identity:
        """A random person and backdrop."""

        def pick(palette: tuple[Colour, ...], jitter: float) -> np.ndarray:
            colour = np.array(palette[rng.integers(len(palette))], np.float64)
            return np.clip(colour + rng.uniform(-jitter, jitter, 3), 0, 255)

        skin, hair = pick(_SKINS, 10), pick(_HAIRS, 12)
        backdrop = rng.uniform(50, 200) + rng.uniform(-25, 25, 3)  # muted, mostly greyish
        rest = FaceParams(
            smile=rng.uniform(-0.1, 0.1),
            brow_raise=rng.uniform(-0.15, 0.15),
            eye_open=rng.uniform(0.9, 1.1),
            mouth_width=rng.uniform(0.95, 1.05),
        )
        corners = tuple(
            tuple(np.clip(backdrop + rng.uniform(-30, 30, 3), 0, 255).tolist()) for _ in range(4)
        )
        return cls(
            skin=tuple(skin.tolist()),
            hair=tuple(hair.tolist()),
            brow=tuple(np.minimum(hair * 0.7, skin * 0.4).tolist()),
            iris=tuple(pick(_IRISES, 10).tolist()),
            lips=tuple((skin * (0.8, 0.5, 0.5) + (25, 0, 5)).tolist()),
            shirt=tuple(rng.uniform(20, 235, 3).tolist()),
            background=corners,  # type: ignore[arg-type]
            face_rx=float(rng.uniform(33, 39)),
            face_ry=float(rng.uniform(44, 49)),
            hair_style=int(rng.integers(4)),
            fringe=float(rng.uniform(16, 22)) if rng.random() < 0.5 else 0.0,
            brow_width=float(rng.uniform(2.4, 3.2)),
            mouth_scale=float(rng.uniform(0.92, 1.08)),
            lip_scale=float(rng.uniform(0.85, 1.15)),
            smirk_side=int(rng.choice((-1, 1))),
            intensity=tuple(rng.uniform(0.8, 1.15, NUM_CLASSES).tolist()),
            rest=tuple(rest.array().tolist()),
        )  # type: ignore[arg-type]

    def apex(self, label: int) -> np.ndarray:
        """This person's apex parameters for class ``label``, as an array in FaceParams order."""
        delta = (APEX[label].array() - _REST) * self.intensity[label]
        delta[_SKEWS] *= self.smirk_side
        return np.asarray(self.rest, np.float32) + delta


@dataclass(frozen=True)
class Nuisance:
    """Per-frame nuisance: pose, lighting, blur, noise, and an optional occluder."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0  # degrees
    scale: float = 1.0
    brightness: float = 1.0
    grad_x: float = 0.0
    grad_y: float = 0.0
    warmth: float = 0.0
    blur: float = 0.0  # 0..1
    noise: float = 3.0  # pixel noise sigma
    occluder: int = 0  # 0 none, 1 hand, 2 bar
    occ_x: float = 56.0
    occ_y: float = 80.0
    occ_angle: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Nuisance:
        """Random pose, lighting, blur and noise; no occluder."""
        dx, dy, angle, scale = (
            *rng.uniform(-2.5, 2.5, 2),
            rng.uniform(-5, 5),
            rng.uniform(0.96, 1.04),
        )
        light = rng.uniform(0.85, 1.15), *rng.uniform(-0.2, 0.2, 2), rng.uniform(-0.05, 0.05)
        return cls(dx, dy, angle, scale, *light, rng.uniform(0, 0.8), rng.uniform(1.5, 6))


def _window(
    x0: float, x1: float, y0: float, y1: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Canvas slices of the face-coordinate box [x0, x1] x [y0, y1], and its coordinate grids."""
    n = len(_GRID)
    xs = slice(max(int(x0) + _M, 0), min(int(x1) + _M + 2, n))
    ys = slice(max(int(y0) + _M, 0), min(int(y1) + _M + 2, n))
    return (ys, xs), _GRID[None, xs], _GRID[ys, None]


def _paint(
    img: np.ndarray, win: tuple[slice, slice], alpha: np.ndarray, colour: Colour | np.ndarray
) -> None:
    sub = img[win]
    sub += alpha[..., None] * (np.asarray(colour, np.float32) - sub)


def _ellipse(
    u: np.ndarray, v: np.ndarray, cx: float, cy: float, rx: float, ry: float
) -> np.ndarray:
    """Anti-aliased ellipse coverage (first-order distance to the outline)."""
    x, y = (u - cx) / rx, (v - cy) / ry
    k = np.sqrt(x * x + y * y) + 1e-6
    grad = np.sqrt((x / rx) ** 2 + (y / ry) ** 2) / k + 1e-6
    return np.clip(0.5 - (k - 1) / grad, 0, 1)


def _capsule(
    u: np.ndarray, v: np.ndarray, p: tuple[float, float], q: tuple[float, float], r: float
) -> np.ndarray:
    """Anti-aliased coverage of the segment ``p``-``q`` drawn with radius ``r``."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    h = np.clip(((u - p[0]) * dx + (v - p[1]) * dy) / (dx * dx + dy * dy + 1e-6), 0, 1)
    return np.clip(r + 0.5 - np.sqrt((u - p[0] - h * dx) ** 2 + (v - p[1] - h * dy) ** 2), 0, 1)


@lru_cache(maxsize=16)
def _base_layer(idt: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The canvas of all that the expression does not move (backdrop, hair, head, nose), and
    the coverage of the bare face skin (for colour cues)."""
    skin, rx, ry, cx = np.array(idt.skin, np.float32), idt.face_rx, idt.face_ry, _CX
    win, u, v = _window(-_M, SIZE + _M, -_M, SIZE + _M)
    s, t = ((u + _M) / len(_GRID))[..., None], ((v + _M) / len(_GRID))[..., None]
    tl, tr, bl, br = (np.array(c, np.float32) for c in idt.background)
    img = (1 - t) * (1 - s) * tl + (1 - t) * s * tr + t * (1 - s) * bl + t * s * br
    hair = _ellipse(u, v, cx, _CY - 8, rx + 5, ry * 0.85)
    if idt.hair_style == 1:  # long: falls to the shoulders
        hair = np.maximum(hair, np.clip(rx + 7.5 - np.abs(u - cx), 0, 1) * np.clip(v - 40, 0, 1))
    elif idt.hair_style == 2:  # curly: a bumpy outline
        bumps = 1 + 0.06 * np.sin(9 * np.arctan2(v - _CY + 8, u - cx))
        hair = _ellipse(cx + (u - cx) / bumps, v, cx, _CY - 8, rx + 7, ry * 0.9)
        hair = hair * np.clip(70 - v, 0, 1)
    else:
        hair = hair * np.clip((48 if idt.hair_style == 0 else 30) - v, 0, 1)
    _paint(img, win, hair, idt.hair)
    _paint(img, win, _ellipse(u, v, cx, SIZE + 38, 70, 36), idt.shirt)
    _paint(img, win, np.clip(rx * 0.5 - np.abs(u - cx), 0, 1) * np.clip(v - 85, 0, 1), skin * 0.8)
    for side in (-1, 1):  # ears
        _paint(img, win, _ellipse(u, v, cx + side * (rx - 1), _CY - 2, 4.5, 8), skin * 0.9)
    face = _ellipse(u, v, cx, _CY, rx, ry)
    shade = 1 - 0.18 * np.clip(((u - cx) / rx) ** 2 + ((v - _CY) / ry) ** 2, 0, 1) ** 2
    _paint(img, win, face, skin * shade[..., None])
    if idt.fringe:
        edge = idt.fringe + 2.5 * np.cos((u - cx) / 6)
        fringe = np.minimum(hair, face) * np.clip(edge - v + 0.5, 0, 1)
        _paint(img, win, fringe, idt.hair)
        face = face * (1 - fringe)
    for side in (-1, 1):  # sides of the nose
        bridge = _capsule(u, v, (cx + side * 4, 54), (cx + side * 5, 69), 1.0)
        _paint(img, win, 0.6 * bridge, skin * 0.82)
    _paint(img, win, 0.6 * _ellipse(u, v, cx, 71, 6.5, 4.5), skin * 0.88)
    _paint(img, win, 0.5 * _ellipse(u, v, cx, 69, 2.5, 2), np.minimum(skin * 1.12, 255))
    return img, face


def _draw_expression(img: np.ndarray, face: np.ndarray, p: np.ndarray, idt: Identity) -> None:
    """Colour cues, brows, eyes, nose wrinkles and mouth for parameters ``p`` (FaceParams order)."""
    p = np.maximum(p, 0, where=np.arange(len(p)) >= 11, out=p.copy())  # cues are never negative
    smile, mopen, width, press, lraise, mskew, teeth = p[:7].tolist()
    braise, tilt, bskew, eye, wrinkle = p[7:12].tolist()
    cues = np.minimum(p[12:], 1)
    glow, gloom, smug = cues[3:].tolist()
    mopen, press, lraise, teeth = (max(x, 0.0) for x in (mopen, press, lraise, teeth))
    skin, cx = np.array(idt.skin, np.float32), _CX

    def window(
        half_width: float, y0: float, y1: float
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray]:
        """A window centred on the face's midline, with x folded onto the right half: a
        symmetric pair of shapes is drawn once, for both sides. Also returns the side (-1, 1)."""
        win, u, v = _window(cx - half_width, cx + half_width, y0, y1)
        return win, cx + np.abs(u - cx), v, np.sign(u - cx + 1e-3)

    tinted = _window(cx - idt.face_rx, cx + idt.face_rx, _CY - idt.face_ry, _CY + idt.face_ry)[0]
    for amount, colour in zip(cues.tolist(), _TINTS, strict=True):
        if amount > 0.02:
            _paint(img, tinted, 0.6 * amount * face[tinted], colour)
    if glow > 0.02:  # blushing cheeks
        win, u, v, _ = window(34, 66, 86)
        _paint(img, win, 0.85 * glow * _ellipse(u, v, cx + 22, 76, 11, 8), (245, 95, 125))
    win, u, v, side = window(
        34,
        38 - 8 * braise - 6 * abs(bskew) - 6 * abs(tilt) - 6,
        38 - 8 * braise + 6 * abs(bskew) + 6 * abs(tilt) + 6,
    )
    y = 38 - 8 * braise + 6 * bskew * side
    inner = (cx + 8 + 3 * min(tilt, 0), y - 6 * tilt)
    outer = (cx + 30, y + 2 * tilt)
    mid = (inner[0] * 0.55 + outer[0] * 0.45, (inner[1] + outer[1]) / 2 - 2)
    brows = np.maximum(
        _capsule(u, v, inner, mid, idt.brow_width), _capsule(u, v, mid, outer, idt.brow_width * 0.8)
    )
    _paint(img, win, brows, idt.brow)
    ex, ry = cx + 18, 5.0 * float(np.clip(eye, 0.05, 2.0))
    win, u, v, _ = window(31, 51 - ry - 3, 51 + ry + 3)
    rim = _ellipse(u, v, ex, 51, 11, ry + 1.4)
    white = _ellipse(u, v, ex, 51, 9.5, ry)
    dist = np.sqrt((u - ex) ** 2 + (v - 51) ** 2)
    _paint(img, win, rim, skin * 0.4)
    _paint(img, win, white, (235, 232, 225))
    _paint(img, win, white * np.clip(4.7 - dist, 0, 1), idt.iris)
    _paint(img, win, white * np.clip(2.3 - dist, 0, 1), (15, 12, 12))
    if gloom > 0.02:  # tears
        win, u, v, _ = window(24, 55, 94)
        tears = np.maximum(
            _capsule(u, v, (ex - 3, 57), (ex - 5, 84), 2.5), _ellipse(u, v, ex - 5, 87, 4.5, 6)
        )
        _paint(img, win, gloom * tears, (70, 140, 255))
    win, u, v, _ = window(9, 71, 77)
    _paint(img, win, _ellipse(u, v, cx + 5, 74, 2.2 * (1 + 0.35 * wrinkle), 1.3), skin * 0.35)
    folds = min(0.6 * max(smile, 0) + 0.8 * wrinkle, 1.0)
    if folds > 0.02:  # nasolabial folds
        end = (cx + 16 + 3 * width, 90 - 5 * smile)
        win, u, v, _ = window(end[0] - cx + 3, min(72, end[1] - 3), max(76, end[1] + 3))
        _paint(img, win, folds * _capsule(u, v, (cx + 8, 74), end, 1.0), skin * 0.6)
    if tilt < -0.02:  # vertical frown lines between the brows
        win, u, v, _ = window(5, 41, 53)
        frown = _capsule(u, v, (cx + 2.5, 43), (cx + 2, 51), 0.7)
        _paint(img, win, min(-tilt, 1) * frown, skin * 0.5)
    if wrinkle > 0.02:  # across the bridge of the nose
        win, u, v = _window(cx - 8, cx + 8, 54, 67)
        lines = [_capsule(u, v, (cx - 6, y + 1), (cx + 6, y - 1), 0.8) for y in (57.0, 60.5, 64.0)]
        _paint(img, win, wrinkle * np.maximum.reduce(lines), skin * 0.5)
    # The mouth: a centre line that bends with smile and skew, and lips that part around it.
    hw = 18 * max(width, 0.5) * idt.mouth_scale
    reach = 10 * abs(smile) + 10 * abs(mskew) + 7
    win, u, v = _window(
        cx - hw - 1, cx + hw + 1, 92 - reach - 6 * mopen - 5 * lraise, 92 + reach + 9 * mopen
    )
    tt = (u - cx) / hw
    centre = 92 - 10 * smile * tt * tt - 5 * mskew * (tt * tt + tt)
    prof = np.sqrt(np.clip(1 - tt * tt, 0, 1))
    upper, lower = centre - (6 * mopen + 5 * lraise) * prof, centre + 9 * mopen * prof
    thick = 3.6 * (1 - 0.75 * min(press, 1)) * idt.lip_scale * (0.35 + 0.65 * prof)
    across = np.clip((1 - np.abs(tt)) * hw + 0.5, 0, 1)
    lips = across * np.clip(0.5 + np.minimum(v - upper + thick, lower + 1.25 * thick - v), 0, 1)
    _paint(img, win, lips, idt.lips)
    cavity = across * np.clip(1.1 + np.minimum(v - upper, lower - v), 0, 1)
    _paint(img, win, cavity, (45, 12, 18))
    if teeth > 0.02:
        band = cavity * np.clip(lower - upper - 1.5, 0, 1) * np.clip(upper + 5 - v, 0, 1)
        _paint(img, win, min(teeth, 1) * band, (235, 230, 215))
    if smug > 0.02:
        tx = cx - 0.35 * hw * idt.smirk_side
        win, u, v = _window(tx - 10, tx + 10, 88, 110)
        _paint(img, win, smug * _ellipse(u, v, tx, 100, 8.5, 8.5), (225, 60, 150))


def _occlude(img: np.ndarray, n: Nuisance, skin: Colour) -> None:
    """Paint a hand (palm and fingers) or a dark bar over part of the posed face."""
    win, u, v = (slice(None), slice(None)), _GRID[None, _M:-_M], _GRID[_M:-_M, None]
    c, s = np.cos(np.radians(n.occ_angle)), np.sin(np.radians(n.occ_angle))
    if int(n.occluder) == 1:
        hand = _ellipse(u, v, n.occ_x, n.occ_y, 13, 15)
        for k in (-1.5, -0.5, 0.5, 1.5):
            base = (n.occ_x + 6 * k * c, n.occ_y + 6 * k * s)
            hand = np.maximum(hand, _capsule(u, v, base, (base[0] + 26 * s, base[1] - 26 * c), 2.6))
        _paint(img, win, hand, np.array(skin, np.float32) * 0.95)
    else:
        ends = (n.occ_x - 40 * c, n.occ_y - 40 * s), (n.occ_x + 40 * c, n.occ_y + 40 * s)
        _paint(img, win, _capsule(u, v, *ends, 6), (40, 40, 46))


def _blur(img: np.ndarray, amount: float) -> np.ndarray:
    """Mild blur: a blend towards a 3x3 binomial filter (much faster than PIL's Gaussian)."""
    w = 0.25 * min(amount, 1.0)
    out = img.copy()
    out[1:-1] += w * (img[:-2] + img[2:] - 2 * img[1:-1])
    rows = out.copy()
    out[:, 1:-1] += w * (rows[:, :-2] + rows[:, 2:] - 2 * rows[:, 1:-1])
    return out


def _render(p: np.ndarray, idt: Identity, n: Nuisance, noise: np.ndarray) -> np.ndarray:
    """The 112x112 face for parameters ``p`` under nuisance ``n``, with unit pixel ``noise``."""
    base, face = _base_layer(idt)
    img = base.copy()
    _draw_expression(img, face, p, idt)
    canvas = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    # Pose: out = c + scale * R(angle) (in - c) + shift; PIL wants the inverse map, out -> in.
    c, s = np.cos(np.radians(n.angle)) / n.scale, np.sin(np.radians(n.angle)) / n.scale
    ox, oy = _CX + n.dx, _CY + n.dy
    affine = (c, s, _CX + _M - c * ox - s * oy, -s, c, _CY + _M + s * ox - c * oy)
    posed = canvas.transform(
        (SIZE, SIZE), Image.Transform.AFFINE, affine, Image.Resampling.BILINEAR
    )
    out = np.array(posed, np.float32)
    if n.occluder:
        _occlude(out, n, idt.skin)
    ramp = (_GRID[_M:-_M] - SIZE / 2) / SIZE
    light = n.brightness * (1 + n.grad_x * ramp[None, :] + n.grad_y * ramp[:, None])
    out *= light[..., None] * np.array((1 + n.warmth, 1, 1 - n.warmth), np.float32)
    if n.blur > 0.1:
        out = _blur(out, n.blur)
    out += noise * n.noise
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_face(
    params: FaceParams,
    identity: Identity,
    rng: np.random.Generator,
    size: int = 112,
    nuisance: Nuisance | None = None,
) -> np.ndarray:
    """Draw one face crop as a (size, size, 3) uint8 RGB array.

    ``nuisance`` sets pose, lighting, blur and occluder; if None, one is drawn from ``rng``
    (without occluder). ``rng`` also draws the pixel noise.
    """
    nuisance = nuisance or Nuisance.random(rng)
    face = _render(
        params.array(), identity, nuisance, rng.standard_normal((SIZE, SIZE, 3), np.float32)
    )
    if size != SIZE:
        face = np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.BILINEAR))
    return face


@dataclass
class _VideoPlan:
    name: str
    identity: Identity
    labels: np.ndarray  # int8, one per label line
    params: np.ndarray  # (frames, len(FaceParams)) float32, one row per video frame
    nuisance: np.ndarray  # (frames, len(Nuisance)) float32
    has_image: np.ndarray  # bool, per video frame
    noise_seed: tuple[int, ...]
    track_seed: tuple[int, ...] = ()


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
) -> _VideoPlan:
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
    return _VideoPlan(name, idt, labels[:frames], params, nuis, has_image, ())


def _render_video(plan: _VideoPlan, image_dir: Path) -> int:
    """Write the JPEGs of one video; return how many."""
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(plan.noise_seed)
    # Pixel noise: crops of one noise field per video, far cheaper than fresh normals per frame.
    field = rng.standard_normal((2 * SIZE, 2 * SIZE, 3), dtype=np.float32)
    frames = np.flatnonzero(plan.has_image)
    for i, (y, x) in zip(frames, rng.integers(0, SIZE, (len(frames), 2)), strict=True):
        nuisance = Nuisance(*plan.nuisance[i].tolist())
        face = _render(plan.params[i], plan.identity, nuisance, field[y : y + SIZE, x : x + SIZE])
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="JPEG", quality=90)
        (image_dir / f"{i + 1:05d}.jpg").write_bytes(buffer.getvalue())
    return len(frames)


def _video_names(train: int, val: int) -> tuple[list[str], list[str], int]:
    """Names like the real data; training videos ``pair`` and ``pair + 1`` are ``_left`` / ``_right``."""
    pair = train // 2 - 1
    names = []
    for k in range(train):
        suffix = "_left" if k == pair else "_right" if k == pair + 1 else ""
        names.append(f"video_{k + 1 if k <= pair else k:03d}{suffix}")
    return names, [f"video_{train + k:03d}" for k in range(val)], pair


def _prepare_out_dir(out: Path) -> None:
    """Remove an earlier sample here; refuse a folder that holds anything else."""
    ours = {"cropped_aligned", "annotations", "tracks", "sample.json"}
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
        for name in ("cropped_aligned", "annotations", "tracks"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def _plan_sample(
    train_videos: int, val_videos: int, frames: int, seed: int
) -> tuple[list[tuple[str, _VideoPlan]], dict[str, list[str]]]:
    """Every video's plan, with its split, in writing order; and the quirks, by video name."""
    train_names, val_names, pair = _video_names(train_videos, val_videos)
    quirks: dict[str, list[str]] = {"left_right_pair": train_names[pair : pair + 2]}
    plans: list[tuple[str, _VideoPlan]] = []
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
            plan.track_seed = (seed, split_id, 4, k)  # the VA / AU tracks' own draws
            plans.append((split, plan))
            for quirk in sorted(special):
                quirks.setdefault(quirk, []).append(name)
    return plans, quirks


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
    from .sample_tracks import write_tracks  # it builds on this module

    out = Path(out_dir)
    _prepare_out_dir(out)
    plans, quirks = _plan_sample(train_videos, val_videos, frames, seed)
    for split, plan in plans:
        write_labels(out / "annotations" / split / f"{plan.name}.txt", plan.labels)
    tracks = write_tracks(out, plans, quirks)
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
        "tracks": tracks,
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
