"""predict --video and serve with checkpoints of the valence-arousal and action-unit tracks: the
per-frame CSV's columns, values that are the head's own outputs on the video's faces, the
per-track submission files, the timeline, and what serve's result.json carries."""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from abaw_expr.cli import main
from abaw_expr.data.annotations import read_task_file
from abaw_expr.data.images import eval_transform
from abaw_expr.inference.checkpoint import load_model, save_model_checkpoint
from abaw_expr.inference.probabilities import frame_values
from abaw_expr.model.temporal import TASK_WIDTHS, task_slices
from abaw_expr.report.timeline import plot_timeline
from abaw_expr.serve import create_app
from abaw_expr.serve.jobs import result_tracks
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES, NUM_CLASSES
from abaw_expr.training.module import build_model
from abaw_expr.video.outputs import frame_caption, prediction_columns, prediction_csv
from abaw_expr.video.predict import predict_videos
from abaw_expr.video.prediction import VideoPrediction
from abaw_expr.video.reader import VideoInfo
from abaw_expr.video.tracks import FaceOptions, VideoFaces, track_video

from .conftest import CPU_EAGER, tiny_config, wait_for_job

FRAMES = 30
AU_PROBS = [f"{name}_prob" for name in AU_NAMES]
EXPR_COLUMNS = ["label", "expression", *CLASS_NAMES]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_synthetic_video(path, FRAMES, size=(320, 180), face_px=110, absent=((12, 16),), seed=4)
    return path


def _checkpoint(path: Path, tasks: tuple[str, ...]) -> Path:
    """An untrained model of ``tasks`` whose one window holds every face frame of the clip."""
    # a head init under which the clip's AU probabilities cross THRESHOLDS both ways against
    # 0.5 (what _assert_called_at needs); a random backbone draws from its own generator
    torch.manual_seed(2)
    config = tiny_config(model__tasks=list(tasks), data__seq_len=64, data__eval_stride=64)
    model = build_model(config)
    with torch.no_grad():  # spread valence and arousal inside [-1, 1], AU probabilities off 0.5
        for layer, scale in ((model.head.va_regressor, 5), (model.head.au_classifier, 40)):
            if layer is not None:
                layer.weight.mul_(scale)
    save_model_checkpoint(model, config, path)
    return path


@pytest.fixture(scope="module", params=[("va", "au"), ("expr", "va", "au")], ids="+".join)
def checkpoint(request, tmp_path_factory) -> Path:
    """The VA+AU checkpoint with fitted AU thresholds beside it; all three tracks without."""
    path = _checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", request.param)
    if "expr" not in request.param:
        _write_thresholds(path)
    return path


def _head_values(checkpoint: Path, clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """The subject's face frames in the clip and the head's values on them, computed here:
    the crops of one face pass through the backbone, then the head over one window."""
    model, config = load_model(checkpoint)
    crops: dict[int, np.ndarray] = {}
    options = FaceOptions(faces="one", size=config.data.image_size)
    faces = track_video(clip, options, lambda number, crop: crops.__setitem__(number, crop))
    numbers = sorted(crops)
    batch = torch.from_numpy(np.stack([crops[n] for n in numbers])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        outputs = model.head(model.backbone(eval_transform()(batch))[None])[0]
    assert np.array_equal(np.flatnonzero(faces.has_face), np.array(numbers) - 1)
    return faces.has_face, frame_values(outputs, model.head.tasks).numpy()


def _rows(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames), list(reader)


def _column(rows: list[dict], *names: str) -> np.ndarray:
    return np.array([[float(r[n]) for n in names] for r in rows])


# Per-AU thresholds as `evaluate --fit-au-thresholds` keeps them, all different, chosen across
# (0, 1) so that on the clip some AUs are called on below 0.5 and some off above it.
THRESHOLDS = (0.2, 0.9, 0.95, 0.06, 0.4, 0.3, 0.6, 0.7, 0.98, 0.1, 0.85, 0.55)


def _write_thresholds(checkpoint: Path) -> np.ndarray:
    """Fitted AU thresholds beside ``checkpoint``, where the docs say they are kept:
    ``<checkpoint stem>.au_thresholds.json``."""
    thresholds = dict(zip(AU_NAMES, THRESHOLDS, strict=True))
    path = checkpoint.with_name(checkpoint.stem + ".au_thresholds.json")
    path.write_text(json.dumps({"thresholds": thresholds, "fitted_on": "a test"}))
    return np.array(THRESHOLDS)


def _assert_called_at(thresholds: np.ndarray, aus: np.ndarray, probs: np.ndarray) -> None:
    """AU calls 0/1, each AU on exactly where its probability reaches its threshold; fitted
    thresholds change calls both ways against 0.5, so a run that ignored them would not pass.
    The probabilities are probabilities: in [0, 1]."""
    assert ((probs >= 0) & (probs <= 1)).all(), "AU*_prob must be probabilities"
    assert set(np.unique(aus)) == {0, 1}
    clear = np.abs(probs - thresholds) > 1e-5  # the CSV rounds to 5 decimals
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(aus[clear], (probs >= thresholds)[clear].astype(int))
    if not np.all(thresholds == 0.5):
        assert (aus[clear] & (probs < 0.5)[clear]).any()  # on below 0.5
        assert (~aus[clear].astype(bool) & (probs >= 0.5)[clear]).any()  # off above 0.5


def test_predict_video_writes_the_checkpoints_tasks_as_its_head_gives_them(
    clip, checkpoint, tmp_path
):
    model, _ = load_model(checkpoint)
    tasks = model.head.tasks
    out = tmp_path / "pred"
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--video", str(clip), "--out", str(out),
         "--faces", "one", "--annotated-video"]
    )  # fmt: skip
    assert code == 0
    header, rows = _rows((out / "clip.csv").read_text())
    expected = ["frame", "time_s", "face", "status"]
    expected += EXPR_COLUMNS if "expr" in tasks else []
    assert header == [*expected, "valence", "arousal", *AU_NAMES, *AU_PROBS]
    assert [int(r["frame"]) for r in rows] == list(range(1, FRAMES + 1))
    # each frame's own timestamp, to the 0.1 ms the CSV keeps: the clip runs at 25 fps
    np.testing.assert_allclose(_column(rows, "time_s")[:, 0], np.arange(FRAMES) / 25, atol=1e-4)

    has_face, values = _head_values(checkpoint, clip)
    assert [int(r["face"]) for r in rows] == has_face.astype(int).tolist()
    assert 10 <= has_face.sum() < FRAMES
    face = np.flatnonzero(has_face)
    part = task_slices(tasks)
    va, au_probs = _column(rows, "valence", "arousal"), _column(rows, *AU_PROBS)
    aus = _column(rows, *AU_NAMES).astype(int)
    # On the face frames: the head's own outputs (tanh'd valence and arousal, sigmoid AUs).
    np.testing.assert_allclose(va[face], values[:, part["va"]], atol=2e-4)
    np.testing.assert_allclose(au_probs[face], values[:, part["au"]], atol=2e-4)
    assert np.abs(va).max() < 1 and np.ptp(va[face], 0).min() > 0
    # AUs are 0/1, on exactly where their probability reaches the fitted thresholds beside the
    # checkpoint, else 0.5; some on, some off.
    thresholds = 0.5 if "expr" in tasks else np.array(THRESHOLDS)
    _assert_called_at(np.broadcast_to(thresholds, len(AU_NAMES)), aus, au_probs)
    if "expr" in tasks:
        probs = _column(rows, *CLASS_NAMES)
        np.testing.assert_allclose(probs[face], values[:, part["expr"]], atol=2e-4)
        labels = [int(r["label"]) for r in rows]
        np.testing.assert_array_equal(labels, probs.argmax(1))
    # A frame without a face takes the nearest face frame's values.
    gap = np.flatnonzero(~has_face)[0]
    assert [rows[gap][c] for c in header[4:]] == [rows[gap - 1][c] for c in header[4:]]

    # One ABAW file per track, as predict --images writes them; the same values as the CSV.
    assert not (out / "clip.txt").exists()
    task, written = read_task_file(out / "va" / "clip.txt", prediction=True)
    assert task.name == "va"
    np.testing.assert_allclose(written, va, atol=1e-5)
    task, written = read_task_file(out / "au" / "clip.txt", prediction=True)
    assert task.name == "au"
    np.testing.assert_array_equal(written, aus)
    if "expr" in tasks:
        task, written = read_task_file(out / "expr" / "clip.txt", prediction=True)
        np.testing.assert_array_equal(written, labels)
    assert (out / "clip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "clip.annotated.mp4").stat().st_size > 0


def test_serve_result_carries_valence_arousal_and_aus(clip, tmp_path):
    checkpoint = _checkpoint(tmp_path / "va_au.ckpt", ("va", "au"))
    thresholds = _write_thresholds(checkpoint)  # serve calls the AUs at them, as predict does
    app = create_app(checkpoint, settings=CPU_EAGER)
    try:
        client = app.test_client()
        page = client.get("/").get_data(as_text=True)
        assert 'id="va-timeline"' in page and 'id="au-timeline"' in page
        with open(clip, "rb") as handle:
            job = client.post("/api/jobs", data={"video": (handle, clip.name)}).get_json()
        job = wait_for_job(client, job["id"])
        assert job["state"] == "done", job
        base = f"/api/jobs/{job['id']}/files/"
        result = client.get(base + job["outputs"]["result"]).get_json()
        assert result["tasks"] == ["va", "au"] and result["aus"] == list(AU_NAMES)
        [person] = result["people"]
        files = person["files"]
        assert {"txt_va", "txt_au"} <= set(files) and "txt" not in files
        assert set(files.values()) < set(job["outputs"].values())
        assert "label" not in person and "probabilities" not in person
        assert len(person["valence"]) == len(person["arousal"]) == len(person["au"]) == FRAMES
        _, rows = _rows(client.get(base + files["csv"]).get_data(as_text=True))
        va = np.array([person["valence"], person["arousal"]]).T
        np.testing.assert_allclose(va, _column(rows, "valence", "arousal"), atol=1e-4)
        np.testing.assert_array_equal(person["au"], _column(rows, *AU_NAMES))
        au_probs = np.array(person["au_probabilities"])
        np.testing.assert_allclose(au_probs, _column(rows, *AU_PROBS), atol=1e-4)
        _assert_called_at(
            thresholds, _column(rows, *AU_NAMES).astype(int), _column(rows, *AU_PROBS)
        )
        download = client.get(base + files["txt_va"])
        assert download.status_code == 200
        # a download, not a page: saved as va_clip.txt
        disposition = download.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and "va_clip.txt" in disposition
        assert download.get_data(as_text=True).startswith("valence,arousal\n")
    finally:
        app.cleanup()


SUBSETS = [s for k in (1, 2, 3) for s in itertools.combinations(("expr", "va", "au"), k)]


@pytest.mark.parametrize("tasks", SUBSETS, ids="+".join)
def test_every_set_of_tasks_gives_its_columns_timeline_caption_and_result(tasks, tmp_path):
    """Without a video: a prediction of each set of tracks through every writer."""
    n = 12
    rng = np.random.default_rng(0)
    outputs = torch.from_numpy(rng.normal(0, 2, (n, sum(TASK_WIDTHS[t] for t in tasks))))
    if "va" in tasks:  # the head's valence and arousal are tanh'd
        va = task_slices(tasks)["va"]
        outputs[:, va] = torch.tanh(outputs[:, va])
    values = frame_values(outputs, tasks).numpy().astype(np.float32)
    status = np.array([1] * 5 + [0] * 3 + [1] * 4, np.uint8)
    info = VideoInfo(tmp_path / "v.mp4", 320, 180, 25.0, n)
    boxes = np.tile(np.float32([10, 10, 60, 60]), (n, 1))
    boxes[status == 0] = np.nan
    faces = VideoFaces(
        info, np.arange(n) / 25.0, status, boxes, np.zeros((n, 5, 2), np.float32), [[]] * n
    )
    prediction = VideoPrediction("v", faces, values, tasks=tasks)
    header, rows = _rows(prediction_csv(prediction))
    assert header == prediction_columns(tasks) and len(rows) == n
    if tasks == ("expr",):  # the paper's model: the columns it always had
        assert header == ["frame", "time_s", "face", "status", *EXPR_COLUMNS]
    assert ("label" in header) == ("expr" in tasks) and ("valence" in header) == ("va" in tasks)
    assert ("AU12" in header) == ("AU12_prob" in header) == ("au" in tasks)
    plot_timeline(
        tmp_path / "v.png", faces.time_s, prediction.probabilities, faces.has_face, "v",
        va=prediction.va, aus=prediction.aus,
    )  # fmt: skip
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    lines, _ = frame_caption(prediction, 6)
    assert len(lines) == len(tasks)
    result = result_tracks(prediction)
    assert result["tasks"] == list(tasks)
    assert result_tracks(prediction, person=False).keys() == result.keys() - {
        "face", "box", "label", "probabilities", "valence", "arousal", "au", "au_probabilities"
    }  # fmt: skip
    assert ("probabilities" in result) == ("classes" in result) == ("expr" in tasks)
    assert ("valence" in result) == ("arousal" in result) == ("va" in tasks)
    assert ("au" in result) == ("au_probabilities" in result) == ("au" in tasks)
    if "expr" in tasks:
        assert np.array(result["probabilities"]).shape == (n, NUM_CLASSES)


@pytest.mark.parametrize("tasks", [("expr", "va", "au"), ("va", "au")], ids="+".join)
def test_the_page_draws_every_task_of_the_checkpoint_in_a_real_browser(
    browser, clip, tasks, tmp_path
):
    """The page's VA curve and AU strip, painted in Chromium from a real job, and the current
    frame's valence, arousal and AUs as the result gives them."""
    from werkzeug.serving import make_server

    app = create_app(_checkpoint(tmp_path / "m.ckpt", tasks), settings=CPU_EAGER)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 1100})
        page.goto(f"http://127.0.0.1:{server.server_port}")
        page.set_input_files("#file", str(clip))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=180_000)
        shown = {
            name: page.is_visible(f"#{name}") for name in ("timeline", "va-timeline", "au-timeline")
        }
        assert shown == {"timeline": "expr" in tasks, "va-timeline": True, "au-timeline": True}
        for name in ("va-timeline", "au-timeline"):
            colours = page.evaluate(
                """(id) => { const c = document.getElementById(id);
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const seen = new Set(); for (let i = 0; i < d.length; i += 4)
                  if (d[i + 3] > 0) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
                return [...seen]; }""",
                name,
            )
            want = {"va-timeline": ("42,157,143", "231,111,81"), "au-timeline": ("59,91,146",)}
            assert set(want[name]) <= set(colours), (name, len(colours))
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        result = page.evaluate("() => result")  # the job's result.json, as the page holds it
        assert result["tasks"] == list(tasks)
        [person] = result["people"]
        on = [n for n, v in zip(result["aus"], person["au"][0], strict=True) if v]
        texts = page.inner_text("#current") + " " + page.inner_text("#current-tracks")
        valence, arousal = person["valence"][0], person["arousal"][0]
        assert f"valence {valence:+.2f}, arousal {arousal:+.2f}" in texts, texts
        assert ("AUs on: " + " ".join(on) if on else "no AU on") in texts, texts
        if "expr" in tasks:
            assert result["classes"][person["label"][0]] in page.inner_text("#current-expression")
    finally:
        server.shutdown()
        app.cleanup()


def test_a_video_without_a_face_gets_the_documented_prior_for_every_task(tmp_path, caplog):
    """docs/videos.md and docs/evaluation.md: a video with no face at all gets the uniform
    prior (Neutral), valence and arousal 0 and no AU in every row, face=0, and a warning."""
    write_synthetic_video(tmp_path / "empty.mp4", 6, size=(320, 180), no_face=True)
    checkpoint = _checkpoint(tmp_path / "all.ckpt", ("expr", "va", "au"))
    _write_thresholds(checkpoint)  # no AU even at thresholds as low as 0.06
    out = tmp_path / "pred"
    run = predict_videos(checkpoint, tmp_path / "empty.mp4", out, FaceOptions(), CPU_EAGER)
    assert not run.failed
    [name] = [p.name for p in run.predictions]
    _, rows = _rows((out / f"{name}.csv").read_text())
    assert len(rows) == 6
    assert {r["face"] for r in rows} == {"0"} and {r["status"] for r in rows} == {"none"}
    assert {r["expression"] for r in rows} == {"Neutral"}
    np.testing.assert_allclose(_column(rows, *CLASS_NAMES), 1 / NUM_CLASSES, atol=1e-5)
    np.testing.assert_array_equal(_column(rows, "valence", "arousal"), 0)
    np.testing.assert_array_equal(_column(rows, *AU_NAMES), 0)
    assert (_column(rows, *AU_PROBS) < 0.5).all()
    _, va = read_task_file(out / "va" / f"{name}.txt", prediction=True)
    np.testing.assert_array_equal(va, 0)
    _, au = read_task_file(out / "au" / f"{name}.txt", prediction=True)
    np.testing.assert_array_equal(au, 0)
    assert "no face found in any of its 6 frames" in caplog.text


def test_the_records_face_frames_are_1_based_inclusive_runs():
    """<video>.json's ``frames``: each run of face frames as [first, last], 1-based, inclusive."""
    from abaw_expr.video.outputs import frame_ranges

    rng = np.random.default_rng(0)
    for mask in ([0, 1, 1, 0, 1], [1, 1, 0, 0], [0, 0], rng.random(40) < 0.5):
        mask = np.asarray(mask, bool)
        runs, start = [], None
        for number, face in enumerate([*mask, False], start=1):  # written out, frame by frame
            if face and start is None:
                start = number
            elif not face and start is not None:
                runs.append([start, number - 1])
                start = None
        assert frame_ranges(mask) == runs
    assert frame_ranges(np.array([0, 1, 1, 0, 1], bool)) == [[2, 3], [5, 5]]


def test_the_record_counts_each_persons_face_frames(tmp_path):
    """<video>.json: per person, ``face_frames`` is the number of frames with their face."""
    from abaw_expr.video.outputs import write_record

    video = tmp_path / "v.mp4"
    video.write_bytes(b"stand-in")  # the record stamps its size and time
    n, status = 9, np.array([1, 1, 0, 0, 1, 0, 1, 1, 0], np.uint8)
    boxes = np.tile(np.float32([10, 10, 60, 60]), (n, 1))
    boxes[status == 0] = np.nan
    info = VideoInfo(video, 320, 180, 25.0, n)
    faces = VideoFaces(
        info, np.arange(n) / 25.0, status, boxes, np.zeros((n, 5, 2), np.float32), [[]] * n
    )
    prediction = VideoPrediction("v", faces, np.zeros((n, NUM_CLASSES), np.float32))
    write_record([prediction], video, tmp_path, FaceOptions(detector="dlib-hog"))
    [person] = json.loads((tmp_path / "v.json").read_text())["people"]
    assert person["face_frames"] == 5 and person["frames"] == [[1, 2], [5, 5], [7, 8]]
