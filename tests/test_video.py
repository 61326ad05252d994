"""Video files end to end: decoding, synthetic ground truth, preprocess to the ABAW layout, and
per-frame prediction from a video (CSV, ABAW txt, timeline, annotated copy)."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from abaw_expr.cli import main
from abaw_expr.data.annotations import read_labels
from abaw_expr.data.frame_index import build_test_index
from abaw_expr.errors import InputError
from abaw_expr.faces import ARCFACE_TEMPLATE, similarity_to_template
from abaw_expr.inference import engine
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.tasks import CLASS_NAMES, HEADER
from abaw_expr.video.preprocess import preprocess_videos
from abaw_expr.video.reader import list_videos, probe_video, read_frames
from abaw_expr.video.tracks import FaceOptions, track_people, track_video

ABSENT = (30, 44)  # 1-based, inclusive: the subject is out of view
# The tests that check alignment against the drawn faces' true points follow them with HOG: it
# boxes a drawn face as it boxes a photo, where YuNet (the default, trained on photos) boxes the
# whole drawn head, so its crops miss the template by 7 px. The default on real faces:
# tests/test_cnn_detectors.py.
DRAWN = "dlib-hog"


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three short 640x360 videos: a face that leaves and comes back, nobody, two people."""
    root = tmp_path_factory.mktemp("videos")
    truth = {
        "returns": write_synthetic_video(root / "returns.mp4", 80, absent=(ABSENT,), seed=1),
        "empty": write_synthetic_video(root / "empty.mp4", 20, no_face=True, seed=2),
        "pair": write_synthetic_video(
            root / "pair.mp4", 50, absent=((20, 34),), second_face=True, seed=3
        ),
    }
    return root, truth


def _alignment_error(points_found: np.ndarray, points_true: np.ndarray) -> np.ndarray:
    errors = []
    for found, true in zip(points_found, points_true, strict=True):
        m = similarity_to_template(found)
        errors.append(np.linalg.norm(true @ m[:, :2].T + m[:, 2] - ARCFACE_TEMPLATE, axis=1).mean())
    return np.array(errors)


def test_reader_streams_every_frame_with_its_time_in_rgb(tmp_path):
    path = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(7):
        writer.write(
            np.dstack([np.zeros((48, 64)), np.zeros((48, 64)), np.full((48, 64), 250)]).astype(
                np.uint8
            )
        )  # BGR red
    writer.release()
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.name) == (64, 48, 10.0, "red")
    frames = list(read_frames(path))
    assert [f.number for f in frames] == list(range(1, 8))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(7) / 10.0, atol=1e-6)
    red, _, blue = frames[0].rgb[..., 0].mean(), 0, frames[0].rgb[..., 2].mean()
    assert red > 200 and blue < 30


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50])
def test_unreadable_video_is_a_one_line_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match="broken.mp4") as err:
        list(read_frames(path))
    assert "\n" not in str(err.value)


def test_list_videos_takes_video_files_and_refuses_an_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no video files"):
        list_videos(tmp_path)
    (tmp_path / "b.MOV").write_bytes(b"x")
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_videos(tmp_path)] == ["a.mp4", "b.MOV"]
    (tmp_path / "a.webm").write_bytes(b"x")
    with pytest.raises(InputError, match="same outputs"):
        list_videos(tmp_path)
    with pytest.raises(InputError, match="no such video"):
        list_videos(tmp_path / "missing.mp4")


def test_faces_found_at_the_right_frames_and_aligned_to_the_template(videos):
    root, truth = videos
    t = truth["returns"]
    crops = {}
    faces = track_video(
        root / "returns.mp4", FaceOptions(DRAWN), lambda n, c: crops.__setitem__(n, c)
    )
    assert faces.num_frames == 80
    np.testing.assert_allclose(faces.time_s, np.arange(80) / 25.0, atol=1e-6)
    found = faces.has_face
    assert not found[~t.visible].any()  # never a face while the subject is away
    assert found[t.visible].mean() >= 0.9  # HOG misses a few frames; none are invented
    assert found[ABSENT[1] : ABSENT[1] + 10].sum() >= 8  # found again soon after it returns
    assert sorted(crops) == [int(n) + 1 for n in np.flatnonzero(found)]
    assert all(c.shape == (112, 112, 3) for c in crops.values())
    errors = _alignment_error(faces.points[found], t.points[found])
    assert errors.mean() < 3.5 and errors.max() < 6.0  # crop pixels, of 112


def test_a_second_person_is_reported_as_another_face_never_as_the_subject(videos):
    root, truth = videos
    t = truth["pair"]
    faces = track_video(root / "pair.mp4", FaceOptions(DRAWN, detect_every=5), lambda n, c: None)
    status = faces.status
    away = ~t.visible
    assert (status[away] == 2).all()  # "other": somebody is there, not the subject
    assert faces.has_face[t.visible].mean() >= 0.9
    errors = _alignment_error(faces.points[faces.has_face], t.points[faces.has_face])
    assert errors.mean() < 3.5  # the subject's face, not the bystander's


def test_preprocess_writes_the_abaw_layout_and_resumes(videos, tmp_path, caplog):
    root, truth = videos
    out = tmp_path / "prep"
    with caplog.at_level(logging.WARNING):
        result = preprocess_videos(root, out)
    assert sorted(result.done) == ["empty", "pair", "returns"] and not result.failed
    assert "empty.mp4: no face found in any of its 20 frames" in caplog.text
    images = out / "cropped_aligned" / "returns"
    names = sorted(os.listdir(images))
    record = json.loads((out / "faces" / "returns.json").read_text())
    assert record["frames"] == 80 and record["fps"] == 25.0
    with_face = [r["frame"] for r in record["per_frame"] if r["status"] == "subject"]
    assert names == [f"{n:05d}.jpg" for n in with_face]
    assert not set(range(ABSENT[0], ABSENT[1] + 1)) & set(with_face)
    assert all("box" in r for r in record["per_frame"] if r["status"] == "subject")
    first = cv2.imread(str(images / names[0]))
    assert first.shape == (112, 112, 3)
    assert os.listdir(out / "cropped_aligned" / "empty") == []
    # The layout is the training data's: the test-set index reads it as it is.
    (tmp_path / "list.txt").write_text("returns,80\nempty,20\n")
    index = build_test_index(out / "cropped_aligned", tmp_path / "list.txt")
    assert index.videos[0].has_image.sum() == len(names) and index.videos[1].has_image.sum() == 0

    # A rerun skips what is complete; a changed video, or one cut short by a kill, is redone.
    again = preprocess_videos(root, out)
    assert sorted(again.skipped) == ["empty", "pair", "returns"] and not again.done
    os.utime(root / "pair.mp4", ns=(1, 1))
    (out / "faces" / "empty.json").unlink()  # as if killed before the record was written
    (out / "cropped_aligned" / ".returns.partial").mkdir()  # left by a kill mid-video
    redo = preprocess_videos(root, out)
    assert sorted(redo.done) == ["empty", "pair"] and redo.skipped == ["returns"]


def test_preprocess_reports_a_bad_video_and_still_does_the_others(videos, tmp_path):
    root, _ = videos
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mp4").write_bytes((root / "empty.mp4").read_bytes())
    (folder / "bad.mp4").write_text("not a video")
    code = main(["preprocess", "--video", str(folder), "--out", str(tmp_path / "out")])
    assert code == 1
    assert (tmp_path / "out" / "faces" / "good.json").is_file()
    assert not (tmp_path / "out" / "cropped_aligned" / "bad").exists()


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return trained_run / "best.ckpt"


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_predict_from_a_video_writes_every_frame(videos, checkpoint, tmp_path, capsys, monkeypatch):
    root, truth = videos
    out = tmp_path / "pred"
    # However long the job, the backbone beside a face pass runs eagerly under --engine auto.
    monkeypatch.setattr(engine, "COMPILE_MIN_FRAMES", 1)
    engines = []
    real_init = engine.BackboneRunner.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        engines.append(self.engine)

    monkeypatch.setattr(engine.BackboneRunner, "__init__", init)
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(root / "returns.mp4"),
         "--out", str(out), "--smooth", "5", "--annotated-video"]
    )  # fmt: skip
    assert code == 0
    rows = _read_csv(out / "returns.csv")
    assert list(rows[0]) == [
        "frame", "time_s", "face", "status", "label", "expression", *CLASS_NAMES
    ]  # fmt: skip
    assert [int(r["frame"]) for r in rows] == list(range(1, 81))
    assert float(rows[25]["time_s"]) == pytest.approx(1.0)
    face = np.array([int(r["face"]) for r in rows], bool)
    assert not face[~truth["returns"].visible].any() and face.mean() > 0.7
    assert {r["status"] for r in rows} == {"subject", "none"}
    probs = np.array([[float(r[c]) for c in CLASS_NAMES] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)
    labels = np.array([int(r["label"]) for r in rows])
    np.testing.assert_array_equal(labels, probs.argmax(1))
    assert all(r["expression"] == CLASS_NAMES[int(r["label"])] for r in rows)
    # Frames without a face take the nearest face frame's prediction.
    gap = np.flatnonzero(~face)
    nearest = gap[0] - 1 if gap[0] > 0 else gap[-1] + 1
    np.testing.assert_array_equal(probs[gap[0]], probs[nearest])
    # The ABAW submission file: header, then one label per frame, the same labels.
    assert (out / "returns.txt").read_text().splitlines()[0] == HEADER
    np.testing.assert_array_equal(read_labels(out / "returns.txt"), labels)
    assert (out / "returns.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    annotated = probe_video(out / "returns.annotated.mp4")
    assert (annotated.width, annotated.height) == (640, 360)
    assert sum(1 for _ in read_frames(out / "returns.annotated.mp4")) == 80
    assert "returns: 80 frames" in capsys.readouterr().out
    assert engines == ["eager"]


def test_predict_a_folder_with_a_faceless_and_an_unreadable_video(
    videos, checkpoint, tmp_path, capsys
):
    root, _ = videos
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.mp4").write_bytes((root / "empty.mp4").read_bytes())
    (folder / "corrupt.mp4").write_bytes(b"\x00" * 4096)
    out = tmp_path / "pred"
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(folder), "--out", str(out)]
    )
    assert code == 1  # one video failed; the other was still done
    err = capsys.readouterr().err
    assert "corrupt.mp4" in err and "Traceback" not in err
    rows = _read_csv(out / "empty.csv")
    assert len(rows) == 20 and {r["face"] for r in rows} == {"0"}
    assert {r["expression"] for r in rows} == {"Neutral"}  # the documented uniform-prior fallback
    assert not (out / "corrupt.csv").exists()


def test_a_video_whose_outputs_would_replace_another_persons_is_refused(
    videos, checkpoint, tmp_path, capsys
):
    root, _ = videos
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "pair.mp4").write_bytes((root / "pair.mp4").read_bytes())  # two people
    (folder / "pair_left.mp4").write_bytes((root / "returns.mp4").read_bytes())
    out = tmp_path / "pred"
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(folder), "--out", str(out)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "pair_left.mp4" in err and "would replace those of pair.mp4" in err
    assert len(_read_csv(out / "pair_left.csv")) == 50  # still the pair's left person (50 frames)
    assert (out / "pair_right.csv").is_file() and not (out / "pair_left.json").exists()


@pytest.mark.parametrize("command", ["predict", "preprocess"])
def test_a_clash_is_refused_when_the_two_videos_fall_in_different_shards(
    videos, checkpoint, tmp_path, capsys, command
):
    """Each shard's task sees only its own videos: the refusal must not depend on that."""
    from abaw_expr.video.batch import shard_index

    root, _ = videos
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "pair.mp4").write_bytes((root / "pair.mp4").read_bytes())  # two people
    (folder / "pair_left.mp4").write_bytes((root / "returns.mp4").read_bytes())
    pair, clashing = (folder / "pair.mp4"), (folder / "pair_left.mp4")
    n = next(n for n in range(2, 50) if shard_index(pair, n) != shard_index(clashing, n))
    out = tmp_path / "out"
    argv = [command, "--video", str(folder), "--out", str(out)]
    if command == "predict":
        argv += ["--checkpoint", str(checkpoint)]
    assert main([*argv, f"--shard={shard_index(pair, n)}/{n}"]) == 0
    capsys.readouterr()
    assert main([*argv, f"--shard={shard_index(clashing, n)}/{n}"]) == 1
    err = capsys.readouterr().err
    assert "pair_left.mp4" in err and "would replace those of pair.mp4" in err
    if command == "predict":  # still the pair's left person (50 frames), not returns.mp4 (80)
        assert len(_read_csv(out / "pair_left.csv")) == 50 and not (out / "pair_left.json").exists()
    else:
        left = json.loads((out / "faces" / "pair_left.json").read_text())
        assert Path(left["source"]).name == "pair.mp4" and left["frames"] == 50


def test_predict_needs_exactly_one_source(checkpoint, tmp_path, capsys):
    code = main(["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path)])
    assert code == 2 and "either --video" in capsys.readouterr().err


def test_shards_cover_every_video_exactly_once_and_stay_put():
    from abaw_expr.video.batch import select_shard, shard_index

    videos = [Path(f"clip_{i:04d}.mp4") for i in range(300)]
    for n in (1, 2, 7, 64):
        shares = [select_shard(videos, (k, n)) for k in range(1, n + 1)]
        assert sorted(v for share in shares for v in share) == sorted(videos)  # once each
        if n == 7:
            assert min(map(len, shares)) > 0.6 * 300 / 7  # roughly even
    # A video's shard depends on its name alone: not on the listing order or on other files.
    before = {v: shard_index(v, 7) for v in videos}
    more = list(reversed(videos)) + [Path("new.mp4")]
    assert all(shard_index(v, 7) == before[v] for v in more if v in before)
    assert select_shard(videos, None) == videos


def test_shards_made_by_separate_processes_cover_every_video_exactly_once():
    """The N tasks of an array job are N processes, each with its own string-hash seed: three
    fresh processes, told to hash differently, still split the folder between them."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from abaw_expr.video.batch import select_shard\n"
        "videos = [Path(f'clip_{i:04d}.mp4') for i in range(300)]\n"
        "print(' '.join(v.name for v in select_shard(videos, (int(sys.argv[1]), 3))))\n"
    )
    shares = []
    for k in (1, 2, 3):
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        env["PYTHONHASHSEED"] = str(k)  # as different as separate processes are by default
        done = subprocess.run(
            [sys.executable, "-c", script, str(k)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        shares.append(done.stdout.split())
    everything = [name for share in shares for name in share]
    assert sorted(everything) == [f"clip_{i:04d}.mp4" for i in range(300)]  # each once


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "x", "1/2/3", "-1/2", ""])
def test_a_bad_shard_spec_is_a_one_line_error(videos, tmp_path, capsys, spec):
    root, _ = videos
    code = main(["preprocess", "--video", str(root), "--out", str(tmp_path), f"--shard={spec}"])
    err = capsys.readouterr().err
    assert code == 2 and "--shard" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cropped_aligned").exists()


def test_preprocess_shards_split_a_folder_between_runs(videos, tmp_path, capsys):
    from abaw_expr.video.batch import shard_index

    root, _ = videos
    out = tmp_path / "prep"
    done = []
    for k in (1, 2):
        result = preprocess_videos(root, out, shard=(k, 2))
        assert all(shard_index(root / f"{v}.mp4", 2) == k for v in result.done)
        done += result.done
    assert sorted(done) == ["empty", "pair", "returns"]
    assert all((out / "faces" / f"{v}.json").is_file() for v in done)


def test_predict_skips_finished_videos_on_rerun(videos, checkpoint, tmp_path, capsys):
    root, _ = videos
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("empty", "pair"):
        (folder / f"{name}.mp4").write_bytes((root / f"{name}.mp4").read_bytes())
    out = tmp_path / "pred"
    args = ["predict", "--checkpoint", str(checkpoint), "--video", str(folder), "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "pair.json").read_text())
    assert record["frames"] == 50 and record["source_bytes"] == (folder / "pair.mp4").stat().st_size
    assert [p["name"] for p in record["people"]] == ["pair_left", "pair_right"]
    first = (out / "pair_right.csv").stat().st_mtime_ns
    capsys.readouterr()
    # As if the first run had been killed during "empty": its record is missing, so it is redone.
    (out / "empty.json").unlink()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert (
        "empty: 20 frames" in printed and "pair:" not in printed and "1 videos already" in printed
    )
    assert (out / "pair_right.csv").stat().st_mtime_ns == first
    assert main([*args, "--overwrite"]) == 0
    assert (out / "pair_right.csv").stat().st_mtime_ns != first


def test_people_who_cross_keep_their_tracks_and_a_newcomer_gets_a_new_one(
    checkpoint, tmp_path, capsys
):
    """Two people cross (the nearer one hides the other for a while); a third enters later."""
    from abaw_expr.synthetic.video import Walker, write_people_video

    people = [
        Walker((120, 170), (520, 190), expression=4, face_px=130),  # walks right, behind
        Walker((520, 190), (120, 170), expression=5, face_px=160),  # walks left, in front
        Walker((320, 90), (330, 100), expression=6, face_px=110, enter=70),
    ]
    truths = write_people_video(tmp_path / "cross.mp4", 100, people, seed=5)
    out = tmp_path / "pred"
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(tmp_path / "cross.mp4"),
         "--out", str(out), "--faces", "all", "--detector", DRAWN]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "cross.json").read_text())
    assert [p["name"] for p in record["people"]] == ["cross_1", "cross_2", "cross_3"]
    faces_json = {}
    for k, truth in enumerate(truths, start=1):
        rows = _read_csv(out / f"cross_{k}.csv")
        assert len(rows) == 100
        face = np.array([int(r["face"]) for r in rows], bool)
        assert not face[~truth.visible].any()  # never somebody else's frames
        assert face[truth.visible].mean() > 0.6  # hidden while crossing, found again after
        faces_json[k] = face
        assert read_labels(out / f"cross_{k}.txt").shape == (100,)
    # No swap: each track's faces are its own person's, in every frame (checked on the
    # tracker's landmarks, from the same pass the command ran). The model classifies the crops
    # cut at these landmarks, so each track's expressions are its own person's.
    people_found = track_people(tmp_path / "cross.mp4", FaceOptions(DRAWN), lambda *a: None)
    assert [faces.name for faces, _ in people_found] == ["cross_1", "cross_2", "cross_3"]
    for k, ((faces, _), truth) in enumerate(zip(people_found, truths, strict=True), start=1):
        np.testing.assert_array_equal(faces.has_face, faces_json[k])
        frames = np.flatnonzero(faces.has_face)
        errors = _alignment_error(faces.points[frames], truth.points[frames])
        assert errors.max() < 8.0, f"track {k} took another person's face"
    # The one behind was hidden for a while and is still one track, not two.
    hidden = np.flatnonzero(truths[0].visible & ~faces_json[1])
    assert len(hidden) >= 5 and faces_json[1][hidden.max() + 1 :].any()


def _gradient_frame(width: int, height: int, shift: int) -> np.ndarray:
    x = (np.arange(width)[None, :] + shift) % 256
    y = np.arange(height)[:, None] % 256
    return np.stack(np.broadcast_arrays(x, y, (x + y) // 2), -1).astype(np.uint8)


def test_preview_scales_down_and_keeps_each_frames_time(tmp_path):
    import av

    from abaw_expr.video.preview import PreviewEncoder

    times = [0.0, 0.04, 0.0402, 0.1, 0.5, 0.52]  # variable rate; two stamps within 1 ms
    encoder = PreviewEncoder(tmp_path / "p.webm", max_width=320)
    for k, t in enumerate(times):
        encoder.add(_gradient_frame(1280, 720, 10 * k), t)
    path = encoder.close()
    assert encoder.source_size == (1280, 720) and encoder.frames == len(times)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [(frame.time, frame.width, frame.height) for frame in container.decode(stream)]
    assert [(w, h) for _, w, h in decoded] == [(320, 180)] * len(times)
    got = [t for t, _, _ in decoded]
    assert got == sorted(set(got))  # strictly increasing
    assert np.allclose(got, [0.0, 0.04, 0.041, 0.1, 0.5, 0.52], atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["p.webm"]


def test_an_aborted_preview_leaves_no_file_and_an_encoder_error_reaches_the_caller(tmp_path):
    from abaw_expr.video.preview import PreviewEncoder

    encoder = PreviewEncoder(tmp_path / "p.webm")
    encoder.add(_gradient_frame(64, 48, 0), 0.0)
    encoder.abort()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("not a folder")
    broken = PreviewEncoder(tmp_path / "file" / "p.webm")  # its folder cannot be made
    with pytest.raises(OSError):
        for k in range(100):
            broken.add(_gradient_frame(64, 48, k), k / 25)
        broken.close()
    broken.abort()  # after an error: returns, nothing left behind
    with pytest.raises(ValueError, match="no frame"):
        PreviewEncoder(tmp_path / "empty.webm").close()
    assert (tmp_path / "file").is_file() and len(list(tmp_path.iterdir())) == 1


def test_a_persons_features_are_their_own_frames_of_their_tracks_in_frame_order():
    """A track cut in two (split_mixed_tracks) serves two people: each person's features are
    those of the frames the face pass gave them, whatever else their tracks hold."""
    import torch

    from abaw_expr.video.predict import _person_features

    has_face = np.zeros(8, dtype=bool)
    has_face[[1, 2, 5, 6]] = True  # this person's frames; 3 and 4 are another's
    faces = type("Faces", (), {"has_face": has_face})()
    parts = [
        (np.array([5, 1, 3]), torch.tensor([[50.0], [10.0], [30.0]])),
        (np.array([6, 2, 4]), torch.tensor([[60.0], [20.0], [40.0]])),
    ]
    features, frames = _person_features(faces, parts, torch.device("cpu"), 1)
    assert frames.tolist() == [1, 2, 5, 6]
    assert features[:, 0].tolist() == [10.0, 20.0, 50.0, 60.0]
    features, frames = _person_features(faces, [], torch.device("cpu"), 888)
    assert frames.tolist() == [] and features.shape == (0, 888)  # the backbone's width
