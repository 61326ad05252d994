"""test-list: a test set's name,frame_count list from its source videos, frames counted by
decoding (not as the container declares them), _left/_right from ABAW's names, bad input in one
line, and predict --images covering every frame of the list."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from abaw_expr.cli import main
from abaw_expr.data.annotations import list_label_files, read_labels
from abaw_expr.data.frame_index import read_video_list
from abaw_expr.evaluation.submission import parse_submission
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.video.reader import probe_video, read_frames

from .test_robustness import _avi_claiming


def _video(path: Path, frames: int, seed: int = 0) -> Path:
    write_synthetic_video(path, frames, size=(160, 96), face_px=60, seed=seed)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("test_videos")
    _video(root / "a.mp4", 23, seed=1)
    _video(root / "b_pair.mp4", 17, seed=2)
    _avi_claiming(root / "liar.avi", 12, 40)  # its headers claim 40 frames
    return root


def test_every_video_gets_its_decoded_frame_count(folder, tmp_path, capsys, caplog):
    assert probe_video(folder / "liar.avi").declared_frames == 40
    out = tmp_path / "list.txt"
    with caplog.at_level(logging.WARNING):
        assert main(["test-list", "--videos", str(folder), "--out", str(out)]) == 0
    assert out.read_text() == "a,23\nb_pair,17\nliar,12\n"
    assert "declares 40 frames, 12 decode" in caplog.text
    # the counts are the frames predict --video and preprocess decode and number
    assert sum(1 for _ in read_frames(folder / "liar.avi")) == 12
    assert read_video_list(out) == [("a", 23), ("b_pair", 17), ("liar", 12)]
    assert "3 videos, 52 frames" in capsys.readouterr().out


def test_abaws_names_take_left_and_right_from_the_pairs_video(folder, tmp_path):
    names = tmp_path / "abaw_test_set.txt"
    names.write_text("b_pair_left\nb_pair_right\na\n")
    out = tmp_path / "list.txt"
    assert main(["test-list", "--videos", str(folder), "--names", str(names), "--out",
                 str(out)]) == 0  # fmt: skip
    assert out.read_text() == "b_pair_left,17\nb_pair_right,17\na,23\n"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_listed_name_without_a_video_is_refused_naming_its_line(folder, tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("a\n\nc_left\n")
    out = tmp_path / "list.txt"
    code = main(["test-list", "--videos", str(folder), "--names", str(names), "--out", str(out)])
    assert code == 2 and f"{names}:3:" in _one_error(capsys) and not out.exists()


def test_an_unreadable_video_is_named_and_nothing_is_written(folder, tmp_path, capsys):
    bad = tmp_path / "videos"
    bad.mkdir()
    (bad / "good.mp4").write_bytes((folder / "a.mp4").read_bytes())
    (bad / "broken.mp4").write_bytes(b"\x00" * 2048)
    out = tmp_path / "list.txt"
    code = main(["test-list", "--videos", str(bad), "--out", str(out)])
    assert code == 2 and "broken.mp4" in _one_error(capsys)
    assert not out.exists() and list(tmp_path.glob(".list.txt*")) == []


def test_a_folder_without_videos_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    code = main(["test-list", "--videos", str(tmp_path), "--out", str(tmp_path / "l.txt")])
    assert code == 2 and "no video files" in _one_error(capsys)


def test_predict_covers_every_frame_of_the_written_list(trained_run, tiny_sample, tmp_path):
    """A source video longer than its faces: the frames after the last face image still get a
    prediction, as many as the video has."""
    name = list_label_files(tiny_sample / "annotations" / "Validation_Set")[0].stem
    images = sorted((tiny_sample / "cropped_aligned" / name).glob("*.jpg"))
    frames = len(read_labels(tiny_sample / "annotations" / "Validation_Set" / f"{name}.txt")) + 9
    assert int(images[-1].stem) < frames
    videos = tmp_path / "videos"
    _video(videos / f"{name}.mp4", frames)
    listing = tmp_path / "list.txt"
    assert main(["test-list", "--videos", str(videos), "--out", str(listing)]) == 0
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--images",
                 str(tiny_sample / "cropped_aligned"), "--videos", str(listing), "--out",
                 str(out), "--device", "cpu"]) == 0  # fmt: skip
    assert len(read_labels(out / f"{name}.txt")) == frames
    _, rows = parse_submission((out / "expr.csv").read_text(), out / "expr.csv")
    assert sorted(rows[name]) == list(range(1, frames + 1))
