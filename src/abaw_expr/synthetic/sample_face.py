"""Drawing one face of the sample data set (:mod:`.sample`).

A cartoon face, 112x112 and placed like an ArcFace-aligned crop, whose expression is set by a
few facial parameters (:class:`FaceParams`), on a person's looks and backdrop
(:class:`Identity`), under a frame's pose, light, blur, noise and occluder
(:class:`Nuisance`). Beside the shapes (mouth, brows, eyes, nose wrinkles), each class but
Surprise has a cartoon colour cue (a tinted face, blushing cheeks, tears, ...) so that even the
features of a randomly initialised backbone separate the classes. :data:`APEX` holds each
class's typical apex. Drawn with numpy and one PIL affine transform (the pose).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from functools import lru_cache

import numpy as np
from PIL import Image

from abaw_expr.tasks import NUM_CLASSES

SIZE = 112
_M = 12  # canvas margin, so that pose jitter never shows the canvas edge
_GRID = np.arange(SIZE + 2 * _M, dtype=np.float32) - _M  # canvas index -> face coordinate
_CX, _CY = SIZE / 2, 62.0  # face centre

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
"""Typical apex parameters of each class (index as in :data:`abaw_expr.tasks.CLASS_NAMES`)."""


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
    """Colour cues, brows, eyes, creases and mouth, in that order, for ``p`` (FaceParams order)."""
    p = np.maximum(p, 0, where=np.arange(len(p)) >= 11, out=p.copy())  # cues are never negative
    smile, mopen, width, press, lraise, mskew, teeth = p[:7].tolist()
    braise, tilt, bskew, eye, wrinkle = p[7:12].tolist()
    cues = np.minimum(p[12:], 1)
    glow, gloom, smug = cues[3:].tolist()
    mopen, press, lraise, teeth = (max(x, 0.0) for x in (mopen, press, lraise, teeth))
    skin = np.array(idt.skin, np.float32)
    _draw_tints(img, face, cues, glow, idt)
    _draw_brows(img, braise, tilt, bskew, idt)
    _draw_eyes(img, eye, gloom, skin, idt)
    _draw_creases(img, smile, width, tilt, wrinkle, skin)
    _draw_mouth(img, (smile, mopen, width, press, lraise, mskew, teeth), smug, idt)


def _mirrored(
    half_width: float, y0: float, y1: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray]:
    """A window centred on the face's midline, with x folded onto the right half: a
    symmetric pair of shapes is drawn once, for both sides. Also returns the side (-1, 1)."""
    win, u, v = _window(_CX - half_width, _CX + half_width, y0, y1)
    return win, _CX + np.abs(u - _CX), v, np.sign(u - _CX + 1e-3)


def _draw_tints(
    img: np.ndarray, face: np.ndarray, cues: np.ndarray, glow: float, idt: Identity
) -> None:
    """The colour cues' tints of the bare face skin (``face``), and blushing cheeks."""
    cx = _CX
    tinted = _window(cx - idt.face_rx, cx + idt.face_rx, _CY - idt.face_ry, _CY + idt.face_ry)[0]
    for amount, colour in zip(cues.tolist(), _TINTS, strict=True):
        if amount > 0.02:
            _paint(img, tinted, 0.6 * amount * face[tinted], colour)
    if glow > 0.02:  # blushing cheeks
        win, u, v, _ = _mirrored(34, 66, 86)
        _paint(img, win, 0.85 * glow * _ellipse(u, v, cx + 22, 76, 11, 8), (245, 95, 125))


def _draw_brows(img: np.ndarray, braise: float, tilt: float, bskew: float, idt: Identity) -> None:
    """Both brows: raised (``braise``), inner ends up or down (``tilt``), one up (``bskew``)."""
    win, u, v, side = _mirrored(
        34,
        38 - 8 * braise - 6 * abs(bskew) - 6 * abs(tilt) - 6,
        38 - 8 * braise + 6 * abs(bskew) + 6 * abs(tilt) + 6,
    )
    y = 38 - 8 * braise + 6 * bskew * side
    inner = (_CX + 8 + 3 * min(tilt, 0), y - 6 * tilt)
    outer = (_CX + 30, y + 2 * tilt)
    mid = (inner[0] * 0.55 + outer[0] * 0.45, (inner[1] + outer[1]) / 2 - 2)
    brows = np.maximum(
        _capsule(u, v, inner, mid, idt.brow_width), _capsule(u, v, mid, outer, idt.brow_width * 0.8)
    )
    _paint(img, win, brows, idt.brow)


def _draw_eyes(img: np.ndarray, eye: float, gloom: float, skin: np.ndarray, idt: Identity) -> None:
    """Both eyes, open as far as ``eye``, and the tears of ``gloom``."""
    ex, ry = _CX + 18, 5.0 * float(np.clip(eye, 0.05, 2.0))
    win, u, v, _ = _mirrored(31, 51 - ry - 3, 51 + ry + 3)
    rim = _ellipse(u, v, ex, 51, 11, ry + 1.4)
    white = _ellipse(u, v, ex, 51, 9.5, ry)
    dist = np.sqrt((u - ex) ** 2 + (v - 51) ** 2)
    _paint(img, win, rim, skin * 0.4)
    _paint(img, win, white, (235, 232, 225))
    _paint(img, win, white * np.clip(4.7 - dist, 0, 1), idt.iris)
    _paint(img, win, white * np.clip(2.3 - dist, 0, 1), (15, 12, 12))
    if gloom > 0.02:  # tears
        win, u, v, _ = _mirrored(24, 55, 94)
        tears = np.maximum(
            _capsule(u, v, (ex - 3, 57), (ex - 5, 84), 2.5), _ellipse(u, v, ex - 5, 87, 4.5, 6)
        )
        _paint(img, win, gloom * tears, (70, 140, 255))


def _draw_creases(
    img: np.ndarray, smile: float, width: float, tilt: float, wrinkle: float, skin: np.ndarray
) -> None:
    """The nostrils (wider with ``wrinkle``), nasolabial folds, frown lines between the brows
    and wrinkles across the bridge of the nose."""
    cx = _CX
    win, u, v, _ = _mirrored(9, 71, 77)
    _paint(img, win, _ellipse(u, v, cx + 5, 74, 2.2 * (1 + 0.35 * wrinkle), 1.3), skin * 0.35)
    folds = min(0.6 * max(smile, 0) + 0.8 * wrinkle, 1.0)
    if folds > 0.02:  # nasolabial folds
        end = (cx + 16 + 3 * width, 90 - 5 * smile)
        win, u, v, _ = _mirrored(end[0] - cx + 3, min(72, end[1] - 3), max(76, end[1] + 3))
        _paint(img, win, folds * _capsule(u, v, (cx + 8, 74), end, 1.0), skin * 0.6)
    if tilt < -0.02:  # vertical frown lines between the brows
        win, u, v, _ = _mirrored(5, 41, 53)
        frown = _capsule(u, v, (cx + 2.5, 43), (cx + 2, 51), 0.7)
        _paint(img, win, min(-tilt, 1) * frown, skin * 0.5)
    if wrinkle > 0.02:  # across the bridge of the nose
        win, u, v = _window(cx - 8, cx + 8, 54, 67)
        lines = [_capsule(u, v, (cx - 6, y + 1), (cx + 6, y - 1), 0.8) for y in (57.0, 60.5, 64.0)]
        _paint(img, win, wrinkle * np.maximum.reduce(lines), skin * 0.5)


def _draw_mouth(img: np.ndarray, shape: tuple[float, ...], smug: float, idt: Identity) -> None:
    """The mouth for ``shape`` = (smile, open, width, press, lip raise, skew, teeth): a centre
    line that bends with smile and skew, and lips that part around it; the teeth, and the
    tongue of ``smug``."""
    smile, mopen, width, press, lraise, mskew, teeth = shape
    cx = _CX
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


def draw_face(p: np.ndarray, idt: Identity, n: Nuisance, noise: np.ndarray) -> np.ndarray:
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
    face = draw_face(
        params.array(), identity, nuisance, rng.standard_normal((SIZE, SIZE, 3), np.float32)
    )
    if size != SIZE:
        face = np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.BILINEAR))
    return face
