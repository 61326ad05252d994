"""``abaw-expr live``: the same people as ``predict --video``, causal values, rows as they
happen, bounded sources, and nothing lost when stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from matplotlib import cbook

from abaw_expr.cli import main
from abaw_expr.inference.causal import causal_probabilities
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.synthetic.video import PhotoFace, write_shots_video, write_synthetic_video
from abaw_expr.tasks import CLASS_NAMES
from abaw_expr.video.live.predictor import LivePredictor
from abaw_expr.video.live.source import FrameSource, source_kind, source_name
from abaw_expr.video.tracks import FaceOptions, track_people

GRACE_BOX = (182, 121, 353, 332)  # her face in matplotlib's grace_hopper.jpg
EILEEN_BOX = (178, 63, 267, 175)  # in scikit-image's astronaut.png
DRAWN = "dlib-hog"  # finds the sample's drawn faces


@pytest.fixture(scope="module")
def checkpoint(untrained_checkpoint):
    return untrained_checkpoint


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    """Grace, a cut, Eileen, a cut, Grace again: two people, one of whom comes back."""
    grace = cv2.cvtColor(
        cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
        cv2.COLOR_BGR2RGB,
    )
    eileen = pytest.importorskip("skimage.data").astronaut()
    path = tmp_path_factory.mktemp("talk") / "talk.mp4"
    write_shots_video(
        path,
        [
            (20, [PhotoFace(grace, GRACE_BOX, (250, 180))]),
            (20, [PhotoFace(eileen, EILEEN_BOX, (330, 170))]),
            (20, [PhotoFace(grace, GRACE_BOX, (260, 185))]),
        ],
    )
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_sources_are_told_apart_and_named():
    assert [source_kind(s) for s in ("0", "/dev/video2", "rtsp://cam/a", "x/clip.mp4")] == [
        "camera", "device", "stream", "file",
    ]  # fmt: skip
    assert source_name("0") == "camera0" and source_name("x/clip.mp4") == "clip"
    assert source_name("rtsp://10.0.0.2:554/live/main") == "10.0.0.2_554_live_main"


def test_live_finds_the_people_predict_finds_and_values_are_causal(talk, checkpoint, tmp_path):
    out = tmp_path / "live"
    assert main(["live", "--checkpoint", str(checkpoint), "--source", str(talk),
                 "--out", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "live.json").read_text())
    assert record["frames_in"] == record["frames_processed"] == 60
    assert record["frames_dropped"] == 0 and record["stopped_by"] == "end"
    assert record["shot_cuts"] == [21, 41]
    assert [p["name"] for p in record["people"]] == ["talk_1", "talk_2"]
    # the same people as the file's pass: Grace's two tracks joined across Eileen's shot
    offline = track_people(talk, FaceOptions(), lambda *a: None)
    grace, eileen = (faces for faces, _ in offline)
    joined = record["people"][0]["tracks"][1]
    assert joined["joined_to"] == record["people"][0]["tracks"][0]["id"]
    for person, faces in zip(("talk_1", "talk_2"), (grace, eileen), strict=True):
        rows = _rows(out / f"{person}.csv")
        frames = [int(r["frame"]) for r in rows]
        assert frames == sorted(frames) and set(frames) <= set(np.flatnonzero(faces.has_face) + 1)
        assert len(frames) >= faces.has_face.sum() - 2  # a track's first face or two may differ
        assert all(r["face"] == "1" and r["status"] == "subject" for r in rows)
        assert all(float(r["latency_ms"]) >= 0 for r in rows)
        assert all(r["expression"] == CLASS_NAMES[int(r["label"])] for r in rows)
    assert record["rows"] == sum(p["rows"] for p in record["people"])
    assert 0 <= record["latency_ms_p50"] <= record["latency_ms_p95"]


def test_a_live_row_holds_the_causal_values_of_its_persons_faces(talk, checkpoint, tmp_path):
    """Every row equals :func:`causal_probabilities` over the features the person's faces
    gave: the window of their last ``seq_len`` faces ending at it, no later frame."""
    model, config = load_model(checkpoint)
    model.eval()
    predictor = LivePredictor(model, FaceOptions(), 8, "talk", tmp_path)
    given: dict[int, list[torch.Tensor]] = {}
    values = predictor._values

    def recording(faces):
        for person, face in faces:
            given.setdefault(person, []).append(face.feature)
        return values(faces)

    predictor._values = recording
    cap = cv2.VideoCapture(str(talk))
    number = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        number += 1
        predictor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), number, number / 25, time.perf_counter())
        # every row made so far is on disk already, not in a buffer (a killed run keeps it)
        on_disk = sum(len(_rows(path)) for path in tmp_path.glob("talk_*.csv"))
        assert on_disk == len(predictor.latencies)
    predictor.close()
    assert sorted(given) == [0, 1]
    for person, features in given.items():
        rows = _rows(tmp_path / f"talk_{person + 1}.csv")
        assert len(rows) == len(features)
        n = len(features)
        expected = causal_probabilities(model.head, torch.stack(features), np.arange(n), n, 8)
        got = np.array([[float(r[c]) for c in CLASS_NAMES] for r in rows])
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_slow_pipeline_drops_frames_of_a_realtime_file_and_counts_them(tmp_path):
    video = tmp_path / "slide.mp4"
    write_synthetic_video(video, 50, face_px=100, seed=1)  # 2 s at 25 frames/s
    source = FrameSource(str(video), realtime=True)
    taken = []
    while (frame := source.next(timeout=5)) is not None:
        taken.append(frame.number)
        time.sleep(0.1)  # a pipeline at 10 frames/s
    source.stop()
    assert source.frames_in == 50 and len(taken) + source.frames_dropped == 50
    assert 10 <= len(taken) <= 35 and taken == sorted(taken) and taken[-1] >= 45
    # without realtime a file gives every frame, however slow the pipeline
    source = FrameSource(str(video))
    every = []
    while (frame := source.next(timeout=5)) is not None:
        every.append(frame.number)
        if len(every) < 5:
            time.sleep(0.1)
    source.stop()
    assert every == list(range(1, 51)) and source.frames_dropped == 0


def test_bad_sources_are_refused_in_one_line(checkpoint, tmp_path, capsys):
    for source, why in ((tmp_path / "none.mp4", "no such video file"),
                        ("93", "cannot open this camera")):  # fmt: skip
        code = main(["live", "--checkpoint", str(checkpoint), "--source", str(source),
                     "--out", str(tmp_path / "out")])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and why in err[-1] and str(source) in err[-1]


def test_sigterm_keeps_every_row_written_and_writes_the_record(checkpoint, tmp_path):
    video = tmp_path / "long.mp4"
    write_synthetic_video(video, 250, face_px=120, seed=3)  # 10 s at 25 frames/s
    out = tmp_path / "live"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "abaw_expr.cli", "live", "--checkpoint", str(checkpoint),
         "--source", str(video), "--out", str(out), "--realtime", "--detector", DRAWN],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    csv_path = out / "long_1.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not csv_path.exists() or csv_path.stat().st_size < 2000):
        time.sleep(0.2)
    assert csv_path.exists(), process.stderr.read().decode() if process.poll() else "no rows"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    record = json.loads((out / "live.json").read_text())
    assert record["stopped_by"] == "sigterm" and record["frames_in"] < 250
    rows = _rows(csv_path)
    assert len(rows) == record["people"][0]["rows"] == record["rows"] > 0
    assert all(len(r) == len(rows[0]) and None not in r.values() for r in rows)  # whole rows


def test_a_stop_event_ends_a_run_and_a_camera_like_source_drops(checkpoint, tmp_path, monkeypatch):
    """The run loop stops when asked (as SIGTERM asks) from another thread."""
    from abaw_expr.video.live.run import run_live

    video = tmp_path / "slide.mp4"
    write_synthetic_video(video, 100, face_px=120, seed=2)
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    options = FaceOptions(DRAWN)
    record = run_live(checkpoint, str(video), tmp_path / "out", options, realtime=True, stop=stop)
    assert record["stopped_by"] == "stop"
    assert record["frames_in"] == record["frames_processed"] + record["frames_dropped"]
