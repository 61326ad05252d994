"""Face detection back ends, alignment to the ArcFace template, and the one-subject tracker."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from abaw_expr.errors import InputError
from abaw_expr.faces import (
    ARCFACE_TEMPLATE,
    Detection,
    SubjectTracker,
    align_face,
    build_detector,
    iou,
    similarity_to_template,
)
from abaw_expr.faces.tracking import NONE, OTHER, SUBJECT
from abaw_expr.synthetic.sample import FaceParams, Identity, Nuisance, render_face


def _placement(scale: float, angle: float, cx: float, cy: float) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((56.0, 56.0), angle, scale)
    matrix[:, 2] += (cx - 56.0, cy - 56.0)
    return matrix


def _frame_with_face(seed: int = 0, scale: float = 1.6, angle: float = 4.0):
    """A 640x360 frame with one sample face, and the true frame positions of its five points."""
    rng = np.random.default_rng(seed)
    face = render_face(FaceParams(), Identity.random(rng), rng, nuisance=Nuisance(noise=1.0))
    matrix = _placement(scale, angle, 300.0, 170.0)
    frame = np.full((360, 640, 3), 110, np.uint8)
    warped = cv2.warpAffine(face, matrix, (640, 360))
    inside = cv2.warpAffine(np.ones((112, 112), np.uint8), matrix, (640, 360)).astype(bool)
    frame[inside] = warped[inside]
    return frame, ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2], face


def _template_error(points_found: np.ndarray, points_true: np.ndarray) -> float:
    """Mean distance, in crop pixels, between the template and the true points after alignment."""
    matrix = similarity_to_template(points_found)
    return float(
        np.linalg.norm(
            points_true @ matrix[:, :2].T + matrix[:, 2] - ARCFACE_TEMPLATE, axis=1
        ).mean()
    )


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_similarity_recovers_a_known_placement():
    matrix = _placement(1.7, -12.0, 321.0, 155.0)
    points = ARCFACE_TEMPLATE @ matrix[:, :2].T + matrix[:, 2]
    found = similarity_to_template(points)
    inverse = cv2.invertAffineTransform(matrix)
    np.testing.assert_allclose(found, inverse, atol=1e-3)
    crop_points = similarity_to_template(points, size=224)  # a larger crop scales the template
    np.testing.assert_allclose(crop_points[:, :2], 2 * inverse[:, :2], atol=1e-3)


def test_align_face_undoes_the_placement():
    frame, points, face = _frame_with_face(angle=-8.0)
    crop = align_face(frame, points)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    inner = (slice(20, 100), slice(20, 92))  # away from the crop's edges, which are resampled
    assert np.abs(crop[inner].astype(int) - face[inner].astype(int)).mean() < 6


def test_degenerate_landmarks_are_an_error_not_a_crop():
    with pytest.raises(ValueError):
        similarity_to_template(np.zeros((5, 2), np.float32))


def test_unknown_detector_is_a_one_line_error():
    with pytest.raises(InputError, match="unknown face detector 'yolo'"):
        build_detector("yolo")


@pytest.fixture(scope="module")
def hog():
    return build_detector("dlib-hog")


def test_dlib_hog_finds_the_face_and_its_five_points(hog):
    frame, points, _ = _frame_with_face(seed=2)
    faces = hog.detect(frame)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert x0 < points[:, 0].min() and points[:, 0].max() < x1
    assert y0 < points[:, 1].min() and points[:, 1].max() < y1
    found = hog.landmarks(frame, faces[0].box)
    assert found.shape == (5, 2)
    assert _template_error(found, points) < 3.0  # crop pixels, of 112


def test_dlib_hog_finds_nothing_in_an_empty_frame(hog):
    assert hog.detect(np.full((360, 640, 3), 90, np.uint8)) == []


def test_dlib_cnn_back_end_finds_the_face():
    frame, points, _ = _frame_with_face(seed=4, scale=2.0)
    small = cv2.resize(frame, (320, 180))  # the CNN is slow on a CPU: a small frame
    faces = build_detector("dlib-cnn").detect(small)
    assert len(faces) == 1
    cx, cy = points[2] / 2  # the nose tip, in the small frame
    x0, y0, x1, y1 = faces[0].box
    assert x0 < cx < x1 and y0 < cy < y1


class ScriptedDetector:
    """Returns the boxes listed for each call's frame (frames carry their number in pixel 0)."""

    name = "scripted"

    def __init__(self, script: dict[int, list[tuple[float, float, float, float]]]):
        self.script = script
        self.calls: list[tuple[int, tuple[int, int]]] = []

    def detect(self, frame: np.ndarray, threshold: float = 0.0) -> list[Detection]:
        if frame.shape[:2] != (360, 640):  # a search near the face: the number is cropped away
            return []
        number = int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])
        self.calls.append((number, frame.shape[:2]))
        return [Detection(box) for box in self.script.get(number, [])]

    def landmarks(self, frame: np.ndarray, box) -> np.ndarray:
        x0, y0, x1, y1 = box
        return ARCFACE_TEMPLATE / 112 * (x1 - x0) + (x0, y0)


def _frames(n: int) -> list[np.ndarray]:
    """Frames that carry their number in pixel (0, 0), read back by ScriptedDetector only when
    the whole frame is searched (a search near the face crops that pixel away)."""
    out = []
    for i in range(n):
        frame = np.zeros((360, 640, 3), np.uint8)
        frame[0, 0, :2] = (i % 256, i // 256)
        out.append(frame)
    return out


def _run(tracker: SubjectTracker, frames: list[np.ndarray]) -> list:
    return [tracker(f) for f in frames]


def test_tracker_follows_the_largest_face_and_names_the_other():
    big, small = (300, 100, 420, 220), (40, 40, 100, 100)
    script = {i: [small, big] for i in range(10)}
    tracker = SubjectTracker(ScriptedDetector(script), detect_every=1)
    seen = _run(tracker, _frames(10))
    assert all(s.status == SUBJECT and s.box == big for s in seen)
    assert seen[0].others == [small]


def test_tracker_a_face_that_leaves_and_comes_back_is_the_subject_again():
    face = (300, 100, 420, 220)
    back = (100, 120, 220, 240)  # returns elsewhere in the frame
    script = {i: [face] for i in range(5)} | {i: [back] for i in range(8, 12)}
    tracker = SubjectTracker(ScriptedDetector(script), detect_every=1)
    status = [s.status for s in _run(tracker, _frames(12))]
    assert status == [SUBJECT] * 5 + [NONE] * 3 + [SUBJECT] * 4


def test_tracker_never_takes_a_bystander_for_the_subject():
    subject, bystander = (300, 100, 420, 220), (20, 20, 80, 80)
    script = {i: [subject, bystander] for i in range(4)} | {i: [bystander] for i in range(4, 9)}
    script |= {i: [bystander, (310, 110, 430, 230)] for i in range(9, 12)}  # the subject returns
    tracker = SubjectTracker(ScriptedDetector(script), detect_every=1)
    seen = _run(tracker, _frames(12))
    assert [s.status for s in seen] == [SUBJECT] * 4 + [OTHER] * 5 + [SUBJECT] * 3
    assert seen[5].others == [bystander] and seen[10].box == (310, 110, 430, 230)


def test_tracker_searches_the_whole_frame_every_n_frames_and_near_the_face_between():
    face = (300, 100, 420, 220)
    detector = ScriptedDetector({})

    def detect(frame, threshold=0.0):
        detector.calls.append((threshold, frame.shape[:2]))
        if frame.shape[:2] == (360, 640):
            return [Detection(face)]
        # a window around the face (margin 0.5 each side), scaled so the face is ~100 px
        return [Detection((60 * 100 / 120, 60 * 100 / 120, 180 * 100 / 120, 180 * 100 / 120))]

    detector.detect = detect
    tracker = SubjectTracker(detector, detect_every=5, min_face=100)
    seen = _run(tracker, _frames(10))
    full = [s.full_search for s in seen]
    assert full == [True, False, False, False, False, True, False, False, False, False]
    assert all(s.status == SUBJECT for s in seen)
    for s in seen:
        np.testing.assert_allclose(s.box, face, atol=2)
    near = [c for c in detector.calls if c[1] != (360, 640)]
    assert near and all(t < 0 for t, _ in near)  # weaker evidence accepted near a known face
    assert all(max(shape) < 210 for _, shape in near)  # a downscaled window, not the frame


def test_tracker_reports_none_without_faces_and_scales_big_frames_for_search():
    detector = ScriptedDetector({})
    tracker = SubjectTracker(detector, detect_width=320)
    seen = _run(tracker, _frames(3))
    assert [s.status for s in seen] == [NONE] * 3
    assert all(shape == (180, 320) for _, shape in detector.calls)


def test_tracker_a_subject_missed_by_the_whole_frame_search_is_found_where_it_was():
    face = (300, 100, 420, 220)
    detector = ScriptedDetector({})
    calls = []

    def detect(frame, threshold=0.0):
        calls.append(frame.shape[:2])
        if frame.shape[:2] == (360, 640):  # the whole frame: found once, then missed (threshold 0)
            return [Detection(face)] if len(calls) == 1 else []
        return [Detection((50, 50, 150, 150))]  # near the face: found with less evidence

    detector.detect = detect
    tracker = SubjectTracker(detector, detect_every=3)
    seen = _run(tracker, _frames(7))
    assert all(s.status == SUBJECT for s in seen)
    assert [s.full_search for s in seen] == [True, False, False, True, False, False, True]


def test_tracker_a_new_face_during_a_brief_miss_is_not_made_a_bystander_for_good():
    first, elsewhere = (300, 100, 420, 220), (60, 120, 180, 240)
    script = {i: [first] for i in range(5)} | {i: [elsewhere] for i in range(7, 12)}
    tracker = SubjectTracker(ScriptedDetector(script), detect_every=1, patience=3)
    seen = _run(tracker, _frames(12))
    # Missed for 2 frames, then a face elsewhere: held as "other" while the subject may still
    # be nearby (patience 3), then taken as the subject, who moved.
    assert [s.status for s in seen] == [SUBJECT] * 5 + [NONE] * 2 + [OTHER] * 2 + [SUBJECT] * 3
    assert seen[-1].box == elsewhere
