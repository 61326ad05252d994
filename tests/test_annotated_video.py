"""``predict --video --annotated-video``: one annotated copy per input video, every person's box
on it in their own colour, as ``serve``'s page draws them."""

from __future__ import annotations

import json

import numpy as np

from abaw_expr.cli import main
from abaw_expr.video.outputs import person_colour
from abaw_expr.video.reader import read_frames

# Two people side by side, both in view from the first frame (as tests/test_serve.py's pair).
PEOPLE = [
    {"start": (170, 170), "end": (190, 180), "expression": 4, "face_px": 130},
    {"start": (470, 180), "end": (450, 170), "expression": 5, "face_px": 130},
]


def _near(frame: np.ndarray, colour: str, tolerance: int = 45) -> np.ndarray:
    """Where an RGB frame is within ``tolerance`` of ``colour`` (hex) in every channel (the
    codec moves a thin line's colour a little)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(frame.astype(int) - rgb) <= tolerance).all(-1)


def test_one_annotated_video_holds_every_persons_box_in_their_colour(trained_run, tmp_path):
    from abaw_expr.synthetic.video import Walker, write_people_video

    clip = tmp_path / "pair.mp4"
    write_people_video(clip, 20, [Walker(**p) for p in PEOPLE], seed=5)
    out = tmp_path / "out"
    code = main(
        ["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--video", str(clip),
         "--out", str(out), "--device", "cpu", "--detector", "dlib-hog", "--annotated-video"]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.glob("*.annotated.mp4")) == ["pair.annotated.mp4"]
    people = json.loads((out / "pair.json").read_text())["people"]
    assert [p["name"] for p in people] == ["pair_left", "pair_right"]
    frame = 10  # both in view
    assert all(any(a <= frame <= b for a, b in p["frames"]) for p in people)
    source = next(f.rgb for f in read_frames(clip) if f.number == frame)
    drawn = next(f.rgb for f in read_frames(out / "pair.annotated.mp4") if f.number == frame)
    assert drawn.shape == source.shape
    half = source.shape[1] // 2
    for k, side in enumerate((slice(0, half), slice(half, None))):  # left's box left, ...
        other = slice(half, None) if k == 0 else slice(0, half)
        colour = person_colour(k)
        assert _near(source, colour).sum() < 20  # not in the picture itself
        assert _near(drawn[:, side], colour).sum() > 300  # the box (and its caption)
        assert _near(drawn[:, other], colour).sum() < 60  # and not around the other person
