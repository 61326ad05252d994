"""The face pass in a process of its own (what ``predict --video`` does): the same calls and
results as in this process, bad videos and a dead process as clear errors, and the command's
outputs unchanged by it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from abaw_expr.errors import InputError
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.video.face_process import FacePassProcess
from abaw_expr.video.tracks import FaceOptions, track_people, track_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    write_synthetic_video(root / "a.mp4", 40, absent=((15, 22),), seed=1)
    write_synthetic_video(root / "b.mp4", 30, second_face=True, seed=2)
    (root / "corrupt.mp4").write_bytes(b"\x00" * 4096)
    return root


class _Calls:
    """Records every callback call, crops as bytes."""

    def __init__(self):
        self.faces, self.frames = [], []

    def on_face(self, *args):
        self.faces.append(tuple(a.tobytes() if isinstance(a, np.ndarray) else a for a in args))

    def on_frame(self, number, declared):
        self.frames.append((number, declared))


def _same_faces(a, b) -> None:
    assert a.name == b.name and a.num_frames == b.num_frames
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.time_s, b.time_s)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.others == b.others


@pytest.mark.parametrize("mode", ["all", "one"])
def test_the_process_makes_the_same_calls_and_results_as_this_process(clips, mode):
    options = FaceOptions(faces=mode, size=48)
    videos = [clips / "a.mp4", clips / "b.mp4"]
    with FacePassProcess(videos, options) as process:
        for video in videos:
            here, there = _Calls(), _Calls()
            if mode == "all":
                expected = track_people(video, options, here.on_face, False, here.on_frame)
            else:
                expected = track_video(video, options, here.on_face, False, here.on_frame)
            got = process.track(video, there.on_face, False, there.on_frame)
            assert there.faces == here.faces and len(here.faces) > 10
            assert there.frames == here.frames
            if mode == "all":
                assert [tracks for _, tracks in got] == [tracks for _, tracks in expected]
                for (a, _), (b, _) in zip(got, expected, strict=True):
                    _same_faces(a, b)
            else:
                _same_faces(got, expected)
    if mode == "all":
        assert sorted(faces.name for faces, _ in got) == ["b_left", "b_right"]


def test_a_bad_video_is_its_one_line_error_and_the_next_is_still_followed(clips):
    videos = [clips / "corrupt.mp4", clips / "a.mp4"]
    with FacePassProcess(videos, FaceOptions(size=48)) as process:
        with pytest.raises(InputError, match="corrupt.mp4: not a readable video"):
            process.track(videos[0], lambda *a: None)
        people = process.track(videos[1], lambda *a: None)
    assert people[0][0].num_frames == 40 and people[0][0].has_face.sum() > 20


def test_videos_are_asked_for_in_their_order(clips):
    options = FaceOptions(size=48)
    with FacePassProcess([clips / "a.mp4"], options) as process:
        with pytest.raises(ValueError, match="not the next video"):
            process.track(clips / "b.mp4", lambda *a: None)
        assert not process.serves([clips / "a.mp4"], FaceOptions(size=64))
        assert process.serves([clips / "a.mp4"], FaceOptions(size=48))
        options.size = 64  # the caller's options change: the process still follows size 48
        assert not process.serves([clips / "a.mp4"], options)
        process.track(clips / "a.mp4", lambda *a: None)
        # its videos handed out: it cannot serve the same list from the start again
        assert not process.serves([clips / "a.mp4"], FaceOptions(size=48))


def test_a_face_pass_that_dies_is_an_error_not_a_hang(clips):
    process = FacePassProcess([clips / "a.mp4"], FaceOptions(size=48))
    process._process.kill()  # before it could send anything: it is still importing
    with pytest.raises(RuntimeError, match="ended unexpectedly"):
        process.track(clips / "a.mp4", lambda *a: None)
    process.close()


def test_its_warnings_reach_this_process_log(clips, tmp_path, caplog):
    """A video that declares more frames than it holds: the pass warns, and the warning is
    logged here, naming the video."""
    whole = tmp_path / "whole.avi"
    write_synthetic_video(whole, 40, seed=1, fourcc="MJPG")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])  # the index that declares 40 frames is at the end
    with caplog.at_level(logging.WARNING), FacePassProcess([cut], FaceOptions(size=48)) as p:
        p.track(cut, lambda *a: None)
    assert "cut.avi: the container declares 40 frames" in caplog.text


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return trained_run / "best.ckpt"  # 32 px crops


@pytest.mark.parametrize("guess", [32, 112])
def test_predict_gives_the_same_outputs_with_the_face_pass_ahead(
    clips, checkpoint, tmp_path, guess
):
    """With the crop size guessed right the process started ahead is used; guessed wrong (the
    command guesses 112 before it reads the checkpoint) a new one is started. The outputs are
    those of the face pass in this process either way."""
    from abaw_expr.inference.settings import VideoSettings
    from abaw_expr.video.predict import predict_videos

    video = clips / "b.mp4"
    quiet = VideoSettings(progress=False)
    here = predict_videos(checkpoint, video, tmp_path / "here", FaceOptions(), video_settings=quiet)
    ahead = FacePassProcess([video], FaceOptions(size=guess))
    there = predict_videos(
        checkpoint, video, tmp_path / "there", FaceOptions(), video_settings=quiet, ahead=ahead
    )
    assert ahead._next == (1 if guess == 32 else 0)  # used, or replaced by a 32 px one
    assert not ahead._process.is_alive()  # closed at the end
    names = sorted(p.name for p in here.predictions)
    assert names == ["b_left", "b_right"] == sorted(p.name for p in there.predictions)
    for name in names:
        for suffix in (".csv", ".txt"):
            a = (tmp_path / "here" / f"{name}{suffix}").read_text()
            assert a == (tmp_path / "there" / f"{name}{suffix}").read_text()


def test_the_face_pass_ends_when_the_command_is_killed(clips):
    """The command dies without closing it (SIGKILL, say) once the pass is under way: the pass
    ends too, instead of waiting forever to hand on crops nobody reads (``subprocess.run``
    below waits for it, as it holds the command's stdout)."""
    import subprocess
    import sys
    import time

    script = f"""
import os
from abaw_expr.video.face_process import FacePassProcess
from abaw_expr.video.tracks import FaceOptions
process = FacePassProcess([{str(clips / "a.mp4")!r}], FaceOptions(size=48))
process._messages.get(timeout=60)  # under way
os._exit(0)
"""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=True)
    assert time.perf_counter() - start < 30


def test_the_video_command_starts_without_torch_dynamo_which_still_works_later():
    """``predict --video`` imports neither ``torch._dynamo`` (2 s) nor Lightning; torchvision
    and ``torch.compile`` work as before once imported (in a fresh interpreter)."""
    import subprocess
    import sys

    script = """
import sys
import abaw_expr.video.predict
assert "torch._dynamo" not in sys.modules and "lightning" not in sys.modules, "imported"
import torch, torchvision
from torchvision.ops import roi_align
boxes = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]])
assert roi_align(torch.rand(1, 3, 8, 8), boxes, 2).shape == (1, 3, 2, 2)
roi_module = sys.modules["torchvision.ops.roi_align"]
assert roi_module.is_compile_supported("cpu") is True  # the real one, imported on first use
assert "torch._dynamo" in sys.modules
assert torch.compile(lambda x: x * 2, backend="eager")(torch.ones(2)).tolist() == [2.0, 2.0]
from torch._dynamo.utils import is_compile_supported
assert type(sys.modules["torch._dynamo.utils"]).__name__ == "module"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
