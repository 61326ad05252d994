"""Nothing lost, nothing trusted blindly: every bad input, interruption and unsafe file that
docs/troubleshooting.md lists, made by the tests and fed to the commands.

A user's mistake gives one line on stderr naming the file (and line), no traceback, and exit
code 2; a job that could be done in part says what failed and exits 1; a fallback warns.
"""

from __future__ import annotations

import fractions
import json
import logging
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from abaw_expr.cli import main
from abaw_expr.data.annotations import read_labels, write_labels
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.tasks import CLASS_NAMES, HEADER
from abaw_expr.training.loop import train
from abaw_expr.video.reader import read_frames
from abaw_expr.writers import atomic_write_bytes
from tests.conftest import tiny_config

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{TESTS.parent / 'src'}{os.pathsep}{TESTS.parent}"}


def _run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``abaw-expr argv``, which must print no traceback."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def _mini_dataset(root: Path, splits: dict[str, dict[str, list[int]]], size: int = 32) -> Path:
    """Label files and random face images: {split: {video: labels}}."""
    rng = np.random.default_rng(0)
    for split, videos in splits.items():
        for name, labels in videos.items():
            write_labels(root / "annotations" / split / f"{name}.txt", labels)
            folder = root / "cropped_aligned" / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(len(labels)):
                pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i + 1:05d}.jpg")
    return root


ALL = list(range(8)) * 2  # every class, twice


def _two_splits(root: Path) -> Path:
    return _mini_dataset(root, {"Train_Set": {"a": ALL}, "Validation_Set": {"b": ALL}})


def _stats(capsys, root: Path) -> tuple[int, str, str]:
    return _run_cli(
        capsys, "stats", "--json", "--images", root / "cropped_aligned",
        "--annotations", root / "annotations",
    )  # fmt: skip


# --- Annotations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("Neutral,Anger,Disgust\n0\n", 1, "header"),  # wrong header
        ("0\n1\n2\n", 1, "header"),  # missing header
        (f"{HEADER}\n0\n8\n", 3, "8"),  # label out of range
        (f"{HEADER}\n0\n-2\n", 3, "-2"),
        (f"{HEADER}\n0\nhappy\n", 3, "happy"),  # not a number
        ("", None, "empty"),
    ],
)
def test_bad_annotation_file_is_one_line_naming_file_and_line(
    tmp_path, capsys, content, line, message
):
    root = _two_splits(tmp_path)
    bad = root / "annotations" / "Train_Set" / "a.txt"
    bad.write_text(content)
    code, _, err = _stats(capsys, root)
    assert code == 2
    error = _one_error_line(err)
    assert (f"{bad}:{line}:" if line else f"{bad}:") in error
    assert message in error.lower()


def test_label_file_without_image_folder_warns_and_has_no_face(tmp_path, capsys, caplog):
    root = _two_splits(tmp_path)
    write_labels(root / "annotations" / "Train_Set" / "ghost.txt", [0, 1, 2])
    with caplog.at_level(logging.WARNING):
        code, out, _ = _stats(capsys, root)
    assert code == 0 and "ghost" in caplog.text
    train = json.loads(out)["Train_Set"]
    assert train["frames"] == len(ALL) + 3 and train["usable"] == len(ALL)


def test_image_folder_without_label_file_is_left_out(tmp_path, capsys):
    root = _two_splits(tmp_path)
    shutil.copytree(root / "cropped_aligned" / "a", root / "cropped_aligned" / "test_video")
    code, out, _ = _stats(capsys, root)
    assert code == 0  # test-set folders sit beside the training ones: not an error
    assert json.loads(out)["Train_Set"]["videos"] == 1


def test_same_video_in_two_splits_is_refused(tmp_path, capsys):
    root = _two_splits(tmp_path)
    write_labels(root / "annotations" / "Validation_Set" / "a.txt", ALL)
    code, _, err = _run_cli(
        capsys, "train", "--images", root / "cropped_aligned", "--annotations",
        root / "annotations", "--out", tmp_path / "run", "--backbone-weights", "none",
    )  # fmt: skip
    assert code == 2 and "'a'" in _one_error_line(err) or "a" in _one_error_line(err)
    assert "Train_Set" in err and "Validation_Set" in err
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_folder_for_file_and_file_for_folder(tmp_path, capsys):
    root = _two_splits(tmp_path)
    label = root / "annotations" / "Train_Set" / "a.txt"
    code, _, err = _run_cli(
        capsys, "stats", "--images", label, "--annotations", root / "annotations"
    )
    assert code == 2 and f"{label}: is a file" in _one_error_line(err)
    code, _, err = _run_cli(
        capsys, "train", "--config", root / "annotations", "--images", root / "cropped_aligned",
        "--annotations", root / "annotations", "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 2 and "is a folder" in _one_error_line(err)
    code, _, err = _run_cli(
        capsys, "score", "--predictions", label, "--annotations", root / "annotations" / "Train_Set"
    )
    # --predictions may be one image_location,... file: a label file is refused at its line 1
    assert code == 2 and f"{label}:1: a prediction file must start with" in _one_error_line(err)


def test_a_missing_path_is_one_line(tmp_path, capsys):
    code, _, err = _run_cli(
        capsys, "stats", "--images", tmp_path / "nope", "--annotations", tmp_path / "nothing"
    )
    assert code == 2 and "nothing" in _one_error_line(err) or "nope" in _one_error_line(err)


# --- Images -------------------------------------------------------------------------------


def _break_images(folder: Path) -> dict[str, Path]:
    """Turn some faces of a video folder into every kind of bad image."""
    frames = sorted(folder.iterdir())
    jpeg = frames[0].read_bytes()
    broken = {
        "truncated": frames[1],
        "zero_bytes": frames[2],
        "garbage": frames[3],
        "png_named_jpg": frames[4],
        "grayscale": frames[5],
        "rgba": frames[6],
        "wrong_size": frames[7],
    }
    broken["truncated"].write_bytes(jpeg[: len(jpeg) // 3])
    broken["zero_bytes"].write_bytes(b"")
    broken["garbage"].write_bytes(b"\xff\xd8 not really a jpeg" * 20)
    face = Image.open(frames[8]).convert("RGB")
    face.save(broken["png_named_jpg"], format="PNG")
    face.convert("L").save(broken["grayscale"], format="JPEG")
    face.convert("RGBA").save(broken["rgba"], format="PNG")
    face.resize((48, 48)).save(broken["wrong_size"], format="JPEG")
    return broken


def test_bad_images_warn_and_the_evaluation_still_covers_every_frame(
    tiny_sample, trained_run, tmp_path, capsys, caplog
):
    images = tmp_path / "cropped_aligned"
    shutil.copytree(tiny_sample / "cropped_aligned", images)
    split = tiny_sample / "annotations" / "Validation_Set"
    video = sorted(split.glob("*.txt"))[0].stem
    broken = _break_images(images / video)
    with caplog.at_level(logging.WARNING):
        code, _, _ = _run_cli(
            capsys, "evaluate", "--checkpoint", trained_run / "best.ckpt", "--images", images,
            "--annotations", split, "--out", tmp_path / "eval", "--device", "cpu",
            "--workers", "0",  # decoding in this process: its warnings reach caplog
        )  # fmt: skip
    assert code == 0
    for kind in ("truncated", "zero_bytes", "garbage"):
        assert f"{broken[kind]}: unreadable image" in caplog.text
    for kind in ("png_named_jpg", "grayscale", "rgba"):
        assert str(broken[kind]) not in caplog.text  # read as RGB, no warning
    resized = [x for x in caplog.text.splitlines() if f"{images / video}:" in x and "resized" in x]
    assert len(resized) == 1  # once per video, however many sizes it holds
    labels = read_labels(split / f"{video}.txt")
    predicted = read_labels(tmp_path / "eval" / "predictions" / f"{video}.txt")
    assert len(predicted) == len(labels)


# --- Videos -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return trained_run / "best.ckpt"


def _predict(capsys, checkpoint, video, out) -> tuple[int, str, str]:
    return _run_cli(
        capsys, "predict", "--checkpoint", checkpoint, "--video", video, "--out", out,
        "--device", "cpu",
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["text", "zero_frames", "truncated"])
def test_a_file_that_is_not_a_video_is_one_line_naming_it(tmp_path, capsys, checkpoint, kind):
    path = tmp_path / "clip.mp4"
    if kind == "text":
        path.write_text("this is not a video\n" * 100)
    elif kind == "zero_frames":
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
        writer.release()  # a container with no frame in it
    else:
        write_synthetic_video(tmp_path / "whole.mp4", 10, size=(160, 96), face_px=80)
        data = (tmp_path / "whole.mp4").read_bytes()
        path.write_bytes(data[:200])  # cut off after the first bytes
    code, _, err = _predict(capsys, checkpoint, path, tmp_path / "out")
    assert code == 1
    assert "clip.mp4" in _one_error_line(err)
    assert not (tmp_path / "out" / "clip.csv").exists()


def _write_vfr(path: Path, stamps_ms: list[int]) -> list[float]:
    """A variable-frame-rate video; returns each frame's time as the container stores it."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = fractions.Fraction(1, 1000)
        for ms in stamps_ms:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 120, np.uint8), "rgb24")
            frame.pts, frame.time_base = ms, stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def test_variable_frame_rate_video_keeps_each_frames_own_time(tmp_path, capsys, checkpoint, caplog):
    path = tmp_path / "vfr.mkv"
    times = _write_vfr(path, [0, 40, 80, 200, 240, 520, 560, 600])
    assert len(set(np.round(np.diff(times), 3))) > 1  # really variable
    with caplog.at_level(logging.WARNING):
        code, _, _ = _predict(capsys, checkpoint, path, tmp_path / "out")
    assert code == 0
    lines = (tmp_path / "out" / "vfr.csv").read_text().splitlines()[1:]
    np.testing.assert_allclose([float(x.split(",")[1]) for x in lines], times, atol=1e-3)
    # The container's duration x rate promises more frames than it holds: said, not trusted.
    assert "8 were decodable" in caplog.text


def _avi_claiming(path: Path, frames: int, claimed: int) -> None:
    """An MJPEG AVI of ``frames`` frames whose headers claim ``claimed`` (avih and strh)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")
    struct.pack_into("<I", data, avih + 8 + 16, claimed)  # dwTotalFrames
    strh = data.find(b"strh")
    struct.pack_into("<I", data, strh + 8 + 32, claimed)  # dwLength
    path.write_bytes(bytes(data))


def test_a_container_that_lies_about_its_length_gives_every_real_frame(
    tmp_path, capsys, checkpoint
):
    path = tmp_path / "liar.avi"
    _avi_claiming(path, frames=12, claimed=3)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) != 12
    assert sum(1 for _ in read_frames(path)) == 12
    code, _, _ = _predict(capsys, checkpoint, path, tmp_path / "out")
    assert code == 0
    assert len((tmp_path / "out" / "liar.csv").read_text().splitlines()) == 1 + 12
    assert len(read_labels(tmp_path / "out" / "liar.txt")) == 12


# --- Configs and the command line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("model:\n  varient: combine\n", "varient"),
        ("optim:\n  lr: fast\n", "optim.lr"),
        ("trainer:\n  epochs: [1, 2]\n", "trainer.epochs"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys, yaml_text, message):
    root = _two_splits(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml_text)
    code, _, err = _run_cli(
        capsys, "train", "--config", config, "--images", root / "cropped_aligned",
        "--annotations", root / "annotations", "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 2 and message in _one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_a_run_that_never_started_leaves_nothing_that_blocks_the_next(tmp_path, capsys):
    """A bad label file is found before the run folder is written (the inputs exist, so the
    command line's own check lets them through); the corrected command then simply runs."""
    root = _two_splits(tmp_path)
    bad = root / "annotations" / "Validation_Set" / "b.txt"
    bad.write_text(f"{HEADER}\n0\n9\n")
    argv = [
        "train", "--images", root / "cropped_aligned", "--annotations", root / "annotations",
        "--out", tmp_path / "run", "--backbone-weights", "none", "--epochs", "1",
        "--set", "data.image_size=32", "--set", "data.seq_len=8", "--set", "data.num_workers=0",
        "--set", "model.frozen_stages=3",
    ]  # fmt: skip
    code, _, err = _run_cli(capsys, *argv)
    assert code == 2 and f"{bad}:3" in _one_error_line(err)
    assert not (tmp_path / "run").exists()
    write_labels(bad, ALL)
    code, _, err = _run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"


def test_a_finished_run_is_never_mixed_with_a_new_one(tiny_sample, trained_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = _run_cli(
        capsys, "train", "--images", tiny_sample / "cropped_aligned", "--annotations",
        tiny_sample / "annotations", "--out", out, "--backbone-weights", "none",
    )  # fmt: skip
    assert code == 2 and "--overwrite" in _one_error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# --- Training -----------------------------------------------------------------------------


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tiny_sample, tmp_path, capsys, monkeypatch
):
    from abaw_expr.training.losses import ExpressionLoss

    out = tmp_path / "run"
    images, annotations = tiny_sample / "cropped_aligned", tiny_sample / "annotations"
    train(tiny_config(), annotations, out, images_dir=images, enable_progress_bar=False)
    good = (out / "last.ckpt").read_bytes()
    nan = lambda self, logits, labels, mask=None: logits.sum() * float("nan")  # noqa: E731
    monkeypatch.setattr(ExpressionLoss, "forward", nan)
    overrides = [
        "--set", "data.image_size=32", "--set", "data.seq_len=8", "--set", "data.stride=8",
        "--set", "data.batch_size=4", "--set", "data.num_workers=0", "--set", "trainer.epochs=2",
        "--set", "model.frozen_stages=3", "--set", "trainer.log_every_n_steps=1000",
    ]  # fmt: skip
    code, _, err = _run_cli(
        capsys, "train", "--images", images, "--annotations", annotations, "--out", out,
        "--resume", "--backbone-weights", "none", *overrides,
    )  # fmt: skip
    assert code == 1
    line = [line for line in err.splitlines() if "stopped:" in line][0]
    assert line.count("step") == 1
    # Read on the host only at the epoch's end here (every 1000 steps otherwise), after every
    # step of the epoch was bad, yet it names the first bad step: the resumed epoch's first.
    first = torch.load(out / "last.ckpt", weights_only=True)["global_step"]
    assert first >= 2  # an epoch of several steps: the first bad one is not the last
    assert f"epoch 1, step {first} (batch 0 of the epoch)" in line
    assert (out / "last.ckpt").read_bytes() == good
    assert json.loads((out / "run.json").read_text())["status"] == "stopped: NonFiniteLossError"


def test_a_class_absent_from_a_split_is_reported(
    tiny_sample, trained_run, tmp_path, caplog, capsys
):
    split = tmp_path / "Validation_Set"
    split.mkdir()
    files = sorted((tiny_sample / "annotations" / "Validation_Set").glob("*.txt"))
    present = np.unique(np.concatenate([read_labels(f) for f in files]))
    removed = int(present[present > 0][0])  # take a class that is there away
    for label_file in files:
        labels = read_labels(label_file)
        labels[labels == removed] = -1
        write_labels(split / label_file.name, labels)
    absent = [name for c, name in enumerate(CLASS_NAMES) if c not in present or c == removed]
    with caplog.at_level(logging.WARNING):
        code, out, _ = _run_cli(
            capsys, "evaluate", "--checkpoint", trained_run / "best.ckpt", "--images",
            tiny_sample / "cropped_aligned", "--annotations", split, "--out", tmp_path / "eval",
            "--json", "--device", "cpu",
        )  # fmt: skip
    assert code == 0
    metrics = json.loads(out)
    assert metrics["absent_classes"] == absent and CLASS_NAMES[removed] in absent
    assert all(metrics["per_class_f1"][name] == 0.0 for name in absent)  # ABAW: zero_division=0
    assert f"no annotated frame of {', '.join(absent)}" in caplog.text
    assert f"cannot exceed {8 - len(absent)}/8" in caplog.text


# --- Interrupted work ---------------------------------------------------------------------


def _val_f1_history(run: Path) -> list[float]:
    import csv

    values = []
    for metrics in sorted(run.glob("logs/version_*/metrics.csv")):
        with open(metrics, newline="") as handle:
            values += [
                float(r["val/macro_f1"]) for r in csv.DictReader(handle) if r.get("val/macro_f1")
            ]
    return values


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_training_killed_mid_epoch_and_resumed_ends_as_the_uninterrupted_run(
    tiny_sample, tmp_path, workers
):
    """Bit for bit on a CPU, with the data read in the main process or by 2 workers."""
    images, annotations = tiny_sample / "cropped_aligned", tiny_sample / "annotations"
    config = lambda: tiny_config(trainer__epochs=3, data__num_workers=workers)  # noqa: E731
    whole = train(
        config(), annotations, tmp_path / "whole", images_dir=images, enable_progress_bar=False,
    )  # fmt: skip
    steps = torch.load(tmp_path / "whole" / "last.ckpt", weights_only=True)["global_step"]
    per_epoch = steps // 3
    killed = subprocess.run(
        [sys.executable, str(TESTS / "kill_train.py"), str(tiny_sample), str(tmp_path / "cut"),
         "3", str(per_epoch + per_epoch // 2), str(workers)],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "cut" / "last.ckpt").is_file(), killed.stderr[-3000:]
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "running"
    resumed = train(
        config(), annotations, tmp_path / "cut", images_dir=images, resume=True,
        enable_progress_bar=False,
    )  # fmt: skip
    assert resumed["best_macro_f1"] == whole["best_macro_f1"]
    history = _val_f1_history(tmp_path / "whole")
    assert len(history) == 3
    assert _val_f1_history(tmp_path / "cut")[-2:] == history[-2:]
    a = torch.load(tmp_path / "whole" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_writer_killed_midway_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_bytes(target, b'{"macro_f1": 0.5}\n')
    script = (
        "import os, signal, sys\n"
        "from abaw_expr.writers import atomic_write\n"
        "def write(tmp):\n"
        "    with open(tmp, 'wb') as f:\n"
        '        f.write(b\'{"macro_f1": 0.9, "half\')\n'
        "        f.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic_write(sys.argv[1], write)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], env=ENV, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert target.read_bytes() == b'{"macro_f1": 0.5}\n'


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.mark.slow
def test_extraction_killed_midway_resumes_to_the_same_features(tiny_sample, tmp_path):
    from safetensors.torch import save_file

    from abaw_expr.model.backbone import build_backbone

    weights = tmp_path / "backbone.safetensors"
    torch.manual_seed(0)
    save_file(
        {k: v.contiguous() for k, v in build_backbone("none").state_dict().items()}, str(weights)
    )
    args = [
        "extract", "--images", tiny_sample / "cropped_aligned", "--annotations",
        tiny_sample / "annotations", "--backbone-weights", weights, "--batch-size", "32",
        "--device", "cpu", "--set", "data.image_size=32",
    ]  # fmt: skip
    assert main([str(a) for a in [*args, "--out", tmp_path / "clean"]]) == 0
    killed = subprocess.run(
        [sys.executable, str(TESTS / "kill_after.py"),
         "abaw_expr.model.backbone:RegNetFeatures.forward", "9",
         *[str(a) for a in [*args, "--out", tmp_path / "cut"]]],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert main([str(a) for a in [*args, "--out", tmp_path / "cut"]]) == 0
    clean, cut = _tree(tmp_path / "clean"), _tree(tmp_path / "cut")
    assert clean.keys() == cut.keys()
    for name in clean:
        if name.endswith(".npy") or name.endswith(".f16"):
            assert clean[name] == cut[name], name


@pytest.mark.slow
def test_preprocessing_killed_midway_resumes_to_the_same_files(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for seed, name in enumerate(["first", "second"]):
        write_synthetic_video(videos / f"{name}.mp4", 30, size=(320, 180), face_px=110, seed=seed)
    assert main(["preprocess", "--video", str(videos), "--out", str(tmp_path / "clean")]) == 0
    killed = subprocess.run(
        [sys.executable, str(TESTS / "kill_after.py"), "cv2:imencode", "45",
         "preprocess", "--video", str(videos), "--out", str(tmp_path / "cut")],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = tmp_path / "cut"
    assert (cut / "faces" / "first.json").is_file() and not (cut / "faces" / "second.json").exists()
    assert not (cut / "cropped_aligned" / "second").exists()  # no half video in the layout
    assert main(["preprocess", "--video", str(videos), "--out", str(cut)]) == 0
    assert _tree(tmp_path / "clean") == _tree(cut)


# --- Files from elsewhere -----------------------------------------------------------------


class _Exploit:
    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path, capsys):
    _Exploit.marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {}, "hyper_parameters": _Exploit()}))
    root = _two_splits(tmp_path)
    code, _, err = _run_cli(
        capsys, "evaluate", "--checkpoint", evil, "--images", root / "cropped_aligned",
        "--annotations", root / "annotations" / "Validation_Set", "--out", tmp_path / "eval",
    )  # fmt: skip
    assert code == 2 and "refused" in _one_error_line(err) and str(evil) in err
    assert not _Exploit.marker.exists()


@pytest.mark.parametrize("name", ["../../etc", "/etc", "a/../../b", ".."])
def test_a_video_name_that_would_leave_the_data_root_is_refused(tmp_path, capsys, checkpoint, name):
    listing = tmp_path / "test_set.txt"
    listing.write_text(f"fine_video\n{name}\n")
    (tmp_path / "cropped_aligned" / "fine_video").mkdir(parents=True)
    code, _, err = _run_cli(
        capsys, "predict", "--checkpoint", checkpoint, "--images", tmp_path / "cropped_aligned",
        "--videos", listing, "--out", tmp_path / "out",
    )  # fmt: skip
    assert code == 2 and f"{listing}:2:" in _one_error_line(err)
    assert not (tmp_path / "out").exists()
