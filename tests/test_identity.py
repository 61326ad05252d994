"""One track, one person: shot cuts end tracks, and tracks are joined only when the faces look
alike (dlib's descriptor). Made-up clips cut from shots of two real people's photos, both public
domain and shipped with packages the tests install: Grace Hopper (matplotlib) and Eileen Collins
(scikit-image's ``astronaut``). The crossing of drawn faces is tests/test_video.py's."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from abaw_expr.cli import main
from abaw_expr.faces.identity import (
    CHIP_SIZE,
    SAME_PERSON_DISTANCE,
    ChipSamples,
    FaceEmbedder,
    face_chip,
)
from abaw_expr.synthetic.video import PhotoFace, write_shots_video, write_synthetic_video
from abaw_expr.video.people import link_tracks, person_names
from abaw_expr.video.reader import read_frames
from abaw_expr.video.shots import ShotCuts
from abaw_expr.video.tracks import STATUS_CODES, FaceOptions, track_people

GRACE_BOX = (182, 121, 353, 332)  # her face in matplotlib's grace_hopper.jpg
EILEEN_BOX = (178, 63, 267, 175)  # in scikit-image's astronaut.png


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def eileen() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


def _people(path) -> list:
    return track_people(path, FaceOptions(), lambda *args: None)


def _frames(faces) -> np.ndarray:
    return np.flatnonzero(faces.has_face) + 1


def test_shot_cuts_are_found_where_the_picture_changes_and_nowhere_else(tmp_path, grace):
    starts = write_shots_video(
        tmp_path / "cuts.mp4",
        [(20, [PhotoFace(grace, GRACE_BOX, (320, 180))]), (6, []), (25, [])],
        seed=1,
    )
    cuts = ShotCuts()
    found = [f.number for f in read_frames(tmp_path / "cuts.mp4") if cuts(f.rgb)]
    # the 6-frame shot is shorter than min_shot (15): its end is not taken for a cut
    assert starts == [1, 21, 27] and found == [21]
    write_synthetic_video(tmp_path / "slide.mp4", 40, face_px=120, seed=2)  # one moving shot
    cuts = ShotCuts()
    assert not any(cuts(f.rgb) for f in read_frames(tmp_path / "slide.mp4"))


def test_after_a_cut_another_person_in_the_same_place_is_another_person(tmp_path, grace, eileen):
    """Before issue 24 the track went on through the cut: one 'person' with two faces."""
    write_shots_video(
        tmp_path / "cut.mp4",
        [
            (25, [PhotoFace(grace, GRACE_BOX, (320, 180), 110, (1, 0))]),
            (25, [PhotoFace(eileen, EILEEN_BOX, (322, 176), 110, (1, 0))]),
        ],
    )
    people = _people(tmp_path / "cut.mp4")
    assert [faces.name for faces, _ in people] == ["cut_1", "cut_2"]  # never together: numbered
    (first, _), (second, _) = people
    assert first.cuts == [26]
    assert _frames(first).min() >= 1 and _frames(first).max() <= 25 and first.has_face.sum() >= 20
    assert _frames(second).min() >= 26 and second.has_face.sum() >= 20
    (record,) = second.tracks
    assert "joined_to" not in record and record["distance"] >= SAME_PERSON_DISTANCE
    assert record["why"].startswith("a new person")


def test_a_person_who_returns_after_a_cut_gets_their_track_back(tmp_path, grace, eileen):
    mirrored = np.ascontiguousarray(grace[:, ::-1])  # another view of her, elsewhere, larger
    mirrored_box = (grace.shape[1] - GRACE_BOX[2], GRACE_BOX[1], grace.shape[1] - GRACE_BOX[0],
                    GRACE_BOX[3])  # fmt: skip
    write_shots_video(
        tmp_path / "back.mp4",
        [
            (25, [PhotoFace(grace, GRACE_BOX, (250, 180), 110, (1, 0))]),
            (25, [PhotoFace(eileen, EILEEN_BOX, (330, 170), 110, (-1, 0))]),
            (25, [PhotoFace(mirrored, mirrored_box, (430, 190), 140, (-1, -0.5))]),
        ],
    )
    people = _people(tmp_path / "back.mp4")
    assert len(people) == 2
    (her, pieces), (other, _) = people
    frames = _frames(her)
    assert frames.min() <= 3 and frames.max() >= 73 and not ((frames > 25) & (frames <= 50)).any()
    assert len(pieces) == 2 and set(_frames(other)) <= set(range(26, 51))
    joined = her.tracks[1]
    assert joined["joined_to"] == pieces[0] and joined["distance"] < SAME_PERSON_DISTANCE
    assert "2 shot cut(s) between" in joined["why"]


def test_the_video_record_lists_each_persons_frames_and_joins(tmp_path, grace, eileen, checkpoint):
    write_shots_video(
        tmp_path / "talk.mp4",
        [
            (20, [PhotoFace(grace, GRACE_BOX, (250, 180))]),
            (20, [PhotoFace(eileen, EILEEN_BOX, (330, 170))]),
            (20, [PhotoFace(grace, GRACE_BOX, (260, 185))]),
        ],
    )
    out = tmp_path / "pred"
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(tmp_path / "talk.mp4"),
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "talk.json").read_text())
    assert record["shot_cuts"] == [21, 41]
    grace_out, eileen_out = record["people"]
    assert [grace_out["name"], eileen_out["name"]] == ["talk_1", "talk_2"]
    assert len(grace_out["frames"]) == 2  # two runs of frames: shots 1 and 3
    assert grace_out["frames"][0][0] <= 2 and grace_out["frames"][1][1] == 60
    assert grace_out["face_frames"] == sum(b - a + 1 for a, b in grace_out["frames"])
    assert [t.get("joined_to") for t in grace_out["tracks"]] == [None, grace_out["tracks"][0]["id"]]
    assert all("why" in t for t in grace_out["tracks"] + eileen_out["tracks"])
    rows = (out / "talk_1.csv").read_text().splitlines()[1:]
    faces = [int(r.split(",")[2]) for r in rows]
    assert sum(faces) == grace_out["face_frames"] and faces[25] == 0


@pytest.fixture(scope="module")
def checkpoint(untrained_checkpoint):
    return untrained_checkpoint


def _seen(spans: dict[int, tuple[int, int]], n: int, places=None) -> list[dict[int, tuple]]:
    """Per frame, the tracks in view, each at its own place (``places[t]``, else far apart)."""
    places = places or {}
    box = {t: (x := places.get(t, 100.0 * t), 0.0, x + 10.0, 10.0) for t in spans}
    return [{t: (box[t], None) for t, (a, b) in spans.items() if a <= i <= b} for i in range(n)]


def test_tracks_join_only_a_person_out_of_view_who_looks_alike_the_nearest_first():
    looks = {1: [0, 0], 2: [5, 0], 3: [0.3, 0], 4: [5.2, 0], 5: [0.25, 0], 6: None, 7: [9, 9]}
    spans = {1: (0, 19), 2: (0, 29), 3: (10, 40), 4: (35, 60), 5: (45, 70), 6: (75, 90),
             7: (80, 99)}  # fmt: skip
    describe = {t: None if v is None else np.float32(v) * 0.1 for t, v in looks.items()}.get
    people, how = link_tracks(_seen(spans, 100), min_track=10, cuts=[30], describe=describe)
    # 3 looks like 1 but they share frames 10-19; 5 looks like both 1 and 3 (ended): the nearer
    assert people == [[1], [2, 4], [3, 5], [6], [7]]
    assert how[5]["joined_to"] == 3 and how[5]["distance"] == pytest.approx(0.005, abs=1e-3)
    assert "1 shot cut(s) between" in how[4]["why"]
    assert how[6]["why"] == "a new person: its face is too dark or flat to tell who it is"
    assert how[7]["why"].startswith("a new person: the nearest") and how[7]["distance"] > 0.4


def test_a_face_that_comes_back_where_it_was_lost_soon_after_needs_less_likeness():
    """0.5 apart: too far for a join anywhere else, near enough where the person was lost in
    the same shot; a face too dark to compare is joined there by place alone, never after a
    cut, too late, or elsewhere."""
    spans = {1: (0, 19), 2: (30, 49), 3: (100, 119), 4: (130, 149), 5: (160, 179), 6: (300, 319),
             7: (330, 349)}  # fmt: skip
    places = {1: 0.0, 2: 5.0, 3: 0.0, 4: 50.0, 5: 0.0, 6: 0.0, 7: 4.0}
    looks = {1: [0.0], 2: [0.5], 3: [0.0], 4: [1.5], 5: [0.0], 6: None, 7: None}
    describe = {t: None if v is None else np.float32(v) for t, v in looks.items()}.get
    seen = _seen(spans, 400, places)
    people, how = link_tracks(seen, 10, cuts=[160], describe=describe, soon=50)
    assert [2] not in people and how[2]["joined_to"] == 1 and "where it comes back" in how[2]["why"]
    # 3 looks like 1 (0.0) and comes back at its place but 50 frames after 2 ended: by looks
    assert how[3]["joined_to"] == 1
    assert "joined_to" not in how[4]  # like nobody
    assert how[5]["joined_to"] == 1 and "1 shot cut(s) between" in how[5]["why"]  # by looks
    assert "joined_to" not in how[6]  # too dark, and nobody was lost there lately
    assert how[7]["joined_to"] == 6 and how[7]["why"].startswith("comes back where track 6")
    people, how = link_tracks(seen, 10, cuts=[330], describe=describe, soon=50)
    assert "joined_to" not in how[7]  # the same place after a cut: nothing to go by


def test_two_people_are_left_and_right_only_when_side_by_side():
    boxes = [[(0, 0, 10, 10)], [(50, 0, 60, 10)]]
    assert person_names(boxes, [[1, 2, 3], [3, 4]]) == ["left", "right"]
    assert person_names(boxes[::-1], [[1, 2, 3], [3, 4]]) == ["right", "left"]
    assert person_names(boxes, [[1, 2], [3, 4]]) == ["1", "2"]


def test_a_track_keeps_a_few_chips_spread_over_it_and_none_of_a_face_in_the_dark(grace):
    points = np.float32([[230, 200], [300, 200], [265, 240], [237, 280], [295, 280]])
    samples = ChipSamples(keep=4, every=5)
    for _ in range(100):
        samples.add(grace, points)
    assert 2 <= len(samples.chips) <= 4 and samples.chips[0].shape == (CHIP_SIZE, CHIP_SIZE, 3)
    assert samples._stride == 8  # the kept ones were thinned, not the first four kept
    embedder = FaceEmbedder()
    assert samples.descriptor(embedder).shape == (128,)
    dark = ChipSamples()
    for _ in range(30):
        dark.add((grace * 0.05).astype(np.uint8), points)
    assert dark.chips == [] and dark.descriptor(embedder) is None
    chip = face_chip(grace, points)
    assert chip[:, :, 0].std() > 20  # a face, not the border


class _SquareFinder:
    """A stand-in detector: every white square on black is a face (found in crops and scaled
    frames alike), with five points at fixed places inside it."""

    def detect(self, image: np.ndarray, threshold: float = 0.0):
        from abaw_expr.faces.detectors import Detection

        mask = (image[..., 0] > 128).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        found = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w >= 8 and 0.7 <= w / h <= 1.4:  # a square cut by the crop is no face
                box = (float(x), float(y), float(x + w), float(y + h))
                found.append(Detection(box, 1.0, self.landmarks(image, box)))
        return found

    def landmarks(self, image, box):
        x0, y0, x1, y1 = box
        unit = np.float32([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
        return unit * np.float32([x1 - x0, y1 - y0]) + np.float32([x0, y0])


def _squares(boxes) -> np.ndarray:
    frame = np.zeros((360, 640, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        frame[y0:y1, x0:x1] = 255
    return frame


def test_a_track_hidden_behind_another_does_not_take_its_face_when_it_jumps():
    """DeepSORT's matching cascade: the track seen last frame chooses first. By overlap alone
    the hidden track's predicted box (which moved on) overlaps the front face more than the
    front track's own box does, once the front face jumps towards it."""
    from abaw_expr.faces import MultiFaceTracker

    tracker = MultiFaceTracker(_SquareFinder())
    front = (300, 100, 400, 200)
    for i in range(3):  # A walks right towards B, both in view
        seen = tracker(_squares([(100 + 30 * i, 100, 200 + 30 * i, 200), front]))
    b = next(tid for tid, box, _ in seen if box[0] == front[0])
    for _ in range(2):  # A is hidden (nothing drawn for it), B stays
        ((tid, _, _),) = tracker(_squares([front]))
        assert tid == b
    # B jumps left: its new box overlaps A's prediction (x 227-327) more than its own
    ((tid, _, _),) = tracker(_squares([(250, 100, 350, 200)]))
    assert tid == b and len(tracker.tracks) == 2


def test_a_track_that_passes_from_one_person_to_another_is_cut_where_it_changes(
    tmp_path, grace, eileen, checkpoint
):
    """In one shot Eileen takes Grace's place from one frame to the next, so the tracker's box
    goes on: the track is cut in two where the face changes, and each part is its own person."""
    write_shots_video(
        tmp_path / "swap.mp4",
        [(60, [PhotoFace(grace, GRACE_BOX, (320, 180), 120, (0.5, 0), (0, 30)),
               PhotoFace(eileen, EILEEN_BOX, (336, 176), 120, (0.5, 0), (30, 60))])],
    )  # fmt: skip
    people = _people(tmp_path / "swap.mp4")
    assert len(people) == 2
    (first, raw_first), (second, raw_second) = people
    assert first.cuts == [] and raw_first == raw_second  # one track of the tracker, cut in two
    assert _frames(first).max() == 30 and _frames(second).min() == 31
    assert first.has_face.sum() >= 25 and second.has_face.sum() >= 25
    (piece,) = second.tracks
    assert piece["split_from"] == raw_first[0] and piece["first_frame"] == 31
    assert piece["why"].startswith("split from track")
    # Predictions and crops: each person gets the cut track's frames that are theirs only.
    out = tmp_path / "pred"
    args = ["--video", str(tmp_path / "swap.mp4"), "--out", str(out)]
    assert main(["predict", "--checkpoint", str(checkpoint), *args]) == 0
    rows = [r.split(",") for r in (out / "swap_1.csv").read_text().splitlines()[1:]]
    assert [int(r[2]) for r in rows] == first.has_face.astype(int).tolist()
    # after her last face frame she keeps its values, not those of the face that followed
    assert all(r[4:] == rows[29][4:] for r in rows[30:])
    assert main(["preprocess", *args[:2], "--out", str(tmp_path / "data")]) == 0
    for faces in (first, second):
        crops = sorted((tmp_path / "data" / "cropped_aligned" / faces.name).glob("*.jpg"))
        assert [int(p.stem) for p in crops] == _frames(faces).tolist()


def test_a_track_is_cut_only_where_two_runs_of_its_faces_look_like_two_people():
    from abaw_expr.faces.identity import mixed_at

    one, other = np.zeros(128, np.float32), np.full(128, 0.1, np.float32)  # 1.13 apart
    assert mixed_at(np.stack([one] * 5 + [other] * 3), 0.6)[0] == 5
    assert mixed_at(np.stack([one] * 7 + [other]), 0.6) is None  # one odd chip: a blur, a turn
    assert mixed_at(np.stack([one] * 4 + [one + 0.04] * 4), 0.6) is None  # 0.45 apart: alike


def test_a_cut_track_is_cut_where_its_box_jumps_and_a_too_short_part_is_no_person():
    from abaw_expr.video.people import note_splits, split_mixed_tracks

    one, other = np.zeros(128, np.float32), np.full(128, 0.1, np.float32)  # 1.13 apart

    def track(jump: int, runs: int) -> tuple[list, dict]:
        """One track over 30 frames whose box jumps at ``jump``, with six chips (every 5th
        frame) of which the first ``runs`` show one person and the rest another."""
        seen = [{1: ((0.0, 0.0, 10.0, 10.0) if i < jump else (30.0, 0.0, 40.0, 10.0), None)}
                for i in range(30)]  # fmt: skip
        chips = ChipSamples()
        chips.chips, chips.frames = [np.zeros((2, 2, 3), np.uint8)] * 6, [0, 5, 10, 15, 20, 25]
        chips._good, chips._descriptors = 6, np.stack([one] * runs + [other] * (6 - runs))
        return seen, {1: chips}

    seen, samples = track(jump=18, runs=4)  # the face changes between frames 15 and 20
    origin = split_mixed_tracks(seen, samples, lambda t: None, 10, [object()])
    ((piece, (source, cut, gap)),) = origin.items()
    assert source == 1 and cut == 18 and gap == pytest.approx(1.13, abs=0.01)
    assert all(list(f) == [1] for f in seen[:18]) and all(list(f) == [piece] for f in seen[18:])
    people, how = link_tracks(seen, 10, describe=lambda t: samples[t].descriptor(None))
    note_splits(how, origin)
    assert people == [[1], [piece]]
    assert how[piece]["why"].startswith("split from track 1 at frame 19")
    people, how = link_tracks(seen, 15, describe=lambda t: samples[t].descriptor(None))
    note_splits(how, origin)  # the 12-frame part is too short a person: dropped, not noted
    assert people == [[1]] and "split_from" not in how[1]

    seen, samples = track(jump=27, runs=5)  # the last part, 3 frames, is too short a person
    origin = split_mixed_tracks(seen, samples, lambda t: None, 10, [object()])
    assert origin == {}  # one odd chip at the end: no cut at all
    seen, samples = track(jump=22, runs=4)
    origin = split_mixed_tracks(seen, samples, lambda t: None, 10, [object()])
    assert [cut for _, cut, _ in origin.values()] == [16]  # no jump inside (15, 20]: its start


def _joined(spans, places, looks, cuts=(), n=200) -> dict[int, dict]:
    """How ``link_tracks`` places each track at its defaults (the join thresholds and the
    window), with stand-in one-number descriptors (``looks``) and box places (x, 10 px wide)."""
    describe = {t: np.float32([v]) for t, v in looks.items()}.get
    return link_tracks(_seen(spans, n, places), 10, cuts=list(cuts), describe=describe)[1]


def test_elsewhere_or_after_a_cut_a_join_needs_a_distance_under_0_4():
    """Docs, "who is who": closer than 0.4 to join; the crowd's strangers lay 0.41-0.55 apart,
    so 0.5 is no join where the lenient rule does not apply: far from where the person was
    lost (5 face widths), or at the same place after a cut."""
    spans = {1: (0, 19), 2: (30, 49)}  # back 11 frames later, in the 2 s window
    elsewhere, there = {1: 0.0, 2: 50.0}, {1: 0.0, 2: 5.0}
    assert "joined_to" not in _joined(spans, elsewhere, {1: 0.0, 2: 0.5})[2]
    assert "joined_to" not in _joined(spans, {1: 0.0, 2: 20.0}, {1: 0.0, 2: 0.5})[2]  # 2 widths
    assert "joined_to" not in _joined(spans, there, {1: 0.0, 2: 0.5}, cuts=[25])[2]
    for places, cuts in ((elsewhere, ()), (there, [25])):
        how = _joined(spans, places, {1: 0.0, 2: 0.39}, cuts)
        assert how[2]["joined_to"] == 1 and "where it comes back" not in how[2]["why"]
        assert how[2]["distance"] == pytest.approx(0.39, abs=1e-3)


def test_the_lenient_join_where_a_face_comes_back_needs_nobody_else_near():
    """Docs, "who is who": where a person was lost, in the same shot and soon, dlib's 0.6 is
    enough "with nobody else's face near": another face within two face widths when they are
    lost or when the face comes back could be the one that comes back."""
    spans, places = {1: (0, 19), 2: (30, 49)}, {1: 0.0, 2: 5.0}  # 0.5 apart: 0.4 < 0.5 < 0.6
    looks = {1: 0.0, 2: 0.5, 3: 5.0}  # 3: somebody else, far from both in looks
    alone = _joined(spans, places, looks)
    assert alone[2]["joined_to"] == 1 and "where it comes back" in alone[2]["why"]
    # 1.5 face widths away (centres 15 px apart) when 1 is lost, gone before 2 comes
    how = _joined({**spans, 3: (10, 25)}, {**places, 3: 15.0}, looks)
    assert "joined_to" not in how[2] and how[2]["why"].startswith("a new person")
    # 1.5 face widths from where 2 comes back, in view since 1 was lost
    how = _joined({**spans, 3: (25, 49)}, {**places, 3: 20.0}, looks)
    assert "joined_to" not in how[2]
    # 2.5 face widths away at both times: not near
    how = _joined({**spans, 3: (10, 49)}, {**places, 3: 30.0}, looks)
    assert how[2]["joined_to"] == 1 and "where it comes back" in how[2]["why"]


def test_a_face_that_comes_back_within_two_seconds_at_the_videos_rate_needs_less_likeness():
    """Docs, "who is who": "within 2 seconds", as the video pass decides it
    (``identify_people`` at the video's frame rate, no window given by hand): at 10 frames/s a
    face 0.5 from the lost one (over 0.4, under 0.6) that comes back where it was lost 19
    frames later is joined (20: 2.0 s, still within), 21 frames later it is a new person."""
    from abaw_expr.video.people import identify_people

    def chips(look: float) -> ChipSamples:
        samples = ChipSamples()
        samples.chips, samples.frames = [np.zeros((2, 2, 3), np.uint8)], [0]
        samples._good, samples._descriptors = 1, np.full((1, 128), look / np.sqrt(128), np.float32)
        return samples

    fps, lost = 10.0, 19
    for gap, joined in ((19, True), (20, True), (21, False)):  # 20 frames: 2.0 s, within
        back = lost + gap
        spans, places = {1: (0, lost), 2: (back, back + 19)}, {1: 0.0, 2: 0.0}
        seen = _seen(spans, back + 20, places)
        people, how, _ = identify_people(seen, {1: chips(0.0), 2: chips(0.5)}, [], 10, fps)
        assert how[2]["distance"] == pytest.approx(0.5, abs=1e-3)
        assert (people == [[1, 2]]) is joined, (gap, how[2]["why"])
        assert ("where it comes back" in how[2]["why"]) is joined


def test_a_person_of_ten_face_frames_counts_but_one_shared_frame_keeps_two_tracks_apart():
    """Docs: tracks shorter than 10 face frames are dropped (10 is a person), and a track
    continues a person only if that person is out of view all through it: one frame where both
    are seen makes them two people, however alike."""
    spans, places, looks = {1: (0, 9), 2: (9, 30)}, {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}
    how = _joined(spans, places, looks)
    assert sorted(how) == [1, 2] and "joined_to" not in how[2]
    how = _joined({1: (0, 8), 2: (20, 40)}, places, looks)  # 9 face frames: not a person
    assert sorted(how) == [2]


def test_a_face_mostly_in_the_dark_is_not_described_by_its_bright_moments(grace):
    """identity.ChipSamples: when most chips of a track were too dark or flat to keep, the track
    has no descriptor, so it is never joined by looks (docs: too dark to describe, never
    joined to anybody across a cut or an absence)."""
    points = np.float32([[230, 200], [300, 200], [265, 240], [237, 280], [295, 280]])
    dark = (grace * 0.05).astype(np.uint8)

    class Embedder:
        def embed(self, chips):
            return np.zeros((len(chips), 128), np.float32)

    for bright, dim, described in ((2, 3, False), (3, 3, True)):
        samples = ChipSamples(keep=8, every=1)
        for image in [grace] * bright + [dark] * dim:
            samples.add(image, points)
        assert len(samples.chips) == bright
        assert (samples.descriptor(Embedder()) is not None) is described


def test_a_track_shorter_than_two_people_is_never_cut():
    """Docs, what it costs: descriptors only for tracks of 20 frames or more (with ten face
    frames a person, a shorter track cannot hold two): a 19-frame track whose chips change
    person is neither described nor cut."""
    from abaw_expr.video.people import split_mixed_tracks

    one, other = np.zeros(128, np.float32), np.full(128, 0.1, np.float32)  # 1.13 apart
    for length, cut in ((19, False), (20, True)):
        seen = [{1: ((0.0, 0.0, 10.0, 10.0), None)} for _ in range(length)]
        chips = ChipSamples()
        chips.chips, chips.frames = [np.zeros((2, 2, 3), np.uint8)] * 4, [0, 5, 10, 15]
        chips._good, chips._descriptors = 4, np.stack([one, one, other, other])
        described = []
        origin = split_mixed_tracks(seen, {1: chips}, described.append, 10, [object()])
        assert bool(origin) is cut and bool(described) is cut


def _flat_square_clip(path, n: int, visible: list[range], fps: float = 10.0):
    """A clip for :class:`_SquareFinder`: a square of 134 on 122 (too flat a face to describe)
    in the frames of ``visible``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    for i in range(n):
        frame = np.full((360, 640, 3), 122, np.uint8)
        if any(i in run for run in visible):
            frame[130:230, 270:370] = 134
        writer.write(frame)
    writer.release()
    return path


def test_the_face_pass_weighs_a_return_by_the_videos_own_frame_rate(tmp_path, monkeypatch):
    """Docs, "who is who": "within 2 seconds" of the video, whatever its frame rate. A 10
    frames/s clip (the stand-in detector's squares, too flat to describe: the place decides)
    where a face comes back at its place 1.6 s after it was lost, then 2.6 s after: the first
    return is the same person, the second a new one (at 25 frames/s both would be joined)."""
    from abaw_expr.video import tracks

    monkeypatch.setattr(tracks, "build_detector", lambda *args: _SquareFinder())
    path = _flat_square_clip(
        tmp_path / "tenfps.avi", 80, [range(0, 12), range(27, 39), range(64, 76)]
    )
    people = track_people(path, FaceOptions(detector="dlib-hog"), lambda *args: None)
    assert people[0][0].info.fps == pytest.approx(10.0)
    assert [_frames(faces).tolist() for faces, _ in people] == [
        [*range(1, 13), *range(28, 40)],
        list(range(65, 77)),
    ]
    (first, second), (third,) = people[0][0].tracks, people[1][0].tracks
    assert second["why"].startswith(f"comes back where track {first['id']} was lost 16 frames")
    assert third["why"] == "a new person: its face is too dark or flat to tell who it is"
    # the csv's status: while only the newcomer is in view the first person's frames are "other"
    status = people[0][0].status
    assert set(status[64:76]) == {STATUS_CODES["other"]} and set(status[12:27]) == {
        STATUS_CODES["none"]
    }


def test_a_video_without_a_person_still_says_where_a_face_was_seen(tmp_path, monkeypatch):
    """Docs: the status column says "other" where only somebody else is in view; a face seen
    for fewer than 10 frames is no person, so the video has nobody, and those frames say so."""
    from abaw_expr.video import tracks

    monkeypatch.setattr(tracks, "build_detector", lambda *args: _SquareFinder())
    path = _flat_square_clip(tmp_path / "glimpse.avi", 20, [range(5, 10)])
    ((faces, raw),) = track_people(path, FaceOptions(detector="dlib-hog"), lambda *args: None)
    assert faces.name == "glimpse" and raw == [] and not faces.has_face.any()
    expected = np.full(20, STATUS_CODES["none"])
    expected[5:10] = STATUS_CODES["other"]
    np.testing.assert_array_equal(faces.status, expected)
