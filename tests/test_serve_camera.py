"""serve's camera mode: JPEG frames POSTed one at a time, each answered with every person's box
and predictions by the session's live predictor; its bounds through Flask's test client, then
the page in a real Chromium whose camera is a Y4M clip of a real face (Grace Hopper's
portrait, which ships with matplotlib)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from abaw_expr.serve import create_app
from abaw_expr.serve.live import LiveLimits, _of_frame, face_json, jpeg_size
from abaw_expr.tasks import CLASS_NAMES
from abaw_expr.video.live.predictor import LivePredictor
from abaw_expr.video.outputs import PERSON_COLOURS

from .conftest import CPU_EAGER

SIZE = (640, 360)


def portrait_frames(count: int = 75) -> list[np.ndarray]:
    """640x360 RGB frames of Grace Hopper's portrait (about 256 px wide) sliding to and fro on
    grey, as benchmarks/detectors.py's portrait_clip."""
    from matplotlib import cbook

    portrait = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    face = cv2.cvtColor(cv2.resize(portrait, None, fx=0.5, fy=0.5), cv2.COLOR_BGR2RGB)
    frames = []
    for i in range(count):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        x = int(40 + 150 * (1 - np.cos(i / 15)))
        frame[30 : 30 + face.shape[0], x : x + face.shape[1]] = face
        frames.append(frame)
    return frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    """A YUV4MPEG2 file (what Chromium's fake camera plays): a header line, then per frame
    ``FRAME`` and its I420 planes."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return data.tobytes()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _make_app(trained_run, **kwargs):
    return create_app(trained_run / "best.ckpt", settings=CPU_EAGER, **kwargs)


@pytest.fixture()
def bounded(trained_run):
    """An app with small camera bounds and a clock the test moves."""
    limits = LiveLimits(
        max_bytes=40_000, max_width=320, max_height=240, max_fps=5, max_clients=2, idle_s=10
    )
    app = _make_app(trained_run, live_limits=limits)
    app.live.clock = FakeClock()
    yield app
    app.cleanup()


def _post(client, sid: str, data: bytes, content_type: str = "image/jpeg"):
    return client.post(f"/api/live/{sid}/frame", data=data, content_type=content_type)


GREY = np.full((120, 160, 3), 90, np.uint8)


def test_frames_are_bounded_in_bytes_and_pixels_and_must_be_jpeg(bounded):
    client = bounded.test_client()
    sid = client.post("/api/live").get_json()["id"]
    ok = _post(client, sid, jpeg(GREY))
    assert ok.status_code == 200 and ok.get_json()["people"] == []
    assert (ok.get_json()["width"], ok.get_json()["height"]) == (160, 120)
    # bytes: over 40,000 (refused before it is read)
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    big = jpeg(noise, 100)
    assert len(big) > 40_000
    response = _post(client, sid, big)
    assert response.status_code == 413
    assert response.get_json() == {"error": f"the frame is larger than {40_000 / 2**20:g} MB"}
    # pixels: 400x200 is wider than 320; a portrait 240x320 frame is within the bounds turned
    response = _post(client, sid, jpeg(np.zeros((200, 400, 3), np.uint8)))
    assert response.status_code == 413
    assert response.get_json()["error"] == "the frame is 400x200 pixels, more than 320x240"
    bounded.live.clock.now += 1
    assert _post(client, sid, jpeg(np.zeros((320, 240, 3), np.uint8))).status_code == 200
    # not a JPEG: one line, 400; another type: 415
    for bad in (b"GIF89a not a jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, jpeg(GREY)[:200]):
        response = _post(client, sid, bad)
        assert response.status_code == 400, bad[:8]
        assert response.get_json()["error"].startswith("the frame is not a JPEG image")
        assert "\n" not in response.get_json()["error"]
    response = _post(client, sid, jpeg(GREY), "image/png")
    assert response.status_code == 415 and "image/jpeg" in response.get_json()["error"]


def test_frames_per_second_are_limited_per_client(bounded):
    client = bounded.test_client()
    clock = bounded.live.clock
    first, second = (client.post("/api/live").get_json()["id"] for _ in range(2))
    frame = jpeg(GREY)
    for _ in range(5):  # 5 a second: allowed
        assert _post(client, first, frame).status_code == 200
    response = _post(client, first, frame)
    assert response.status_code == 429
    assert response.get_json()["error"] == "more than 5 frames per second: send frames slower"
    assert _post(client, second, frame).status_code == 200  # per client
    clock.now += 1.01
    assert _post(client, first, frame).status_code == 200


def test_camera_clients_are_limited_and_idle_sessions_end(bounded):
    client = bounded.test_client()
    clock = bounded.live.clock
    started = client.post("/api/live")
    assert started.status_code == 201
    body = started.get_json()
    assert body["tasks"] == ["expr"] and body["max_fps"] == 5 and body["idle_s"] == 10
    a, b = body["id"], client.post("/api/live").get_json()["id"]
    refused = client.post("/api/live")
    assert refused.status_code == 503
    assert refused.get_json()["error"] == (
        "2 camera clients are connected, the most at once: try again when one stops "
        "(or after 10 s without a frame)"
    )
    closed = []
    bounded.live.sessions[a].predictor.close = lambda: closed.append(a)
    assert client.delete(f"/api/live/{a}").get_json() == {"ended": a}
    assert closed == [a]
    assert client.delete(f"/api/live/{a}").status_code == 404
    assert _post(client, a, jpeg(GREY)).status_code == 404
    c = client.post("/api/live").get_json()["id"]  # one ended: another may start
    assert client.post(f"/api/live/{c}/end").status_code == 200  # what the page's beacon sends
    # b is silent for over 10 s: it ends by itself, its frames are refused, and a slot is free
    clock.now += 9
    d = client.post("/api/live").get_json()["id"]
    clock.now += 1.5
    assert _post(client, d, jpeg(GREY)).status_code == 200  # d is not idle
    response = _post(client, b, jpeg(GREY))
    assert response.status_code == 404
    assert response.get_json()["error"] == (
        f"no camera session {b[:12]}: it stopped, or ended after 10 s without a frame"
    )
    assert sorted(bounded.live.sessions) == [d]
    assert client.post("/api/live").status_code == 201


def _replay(app, kept) -> list[list[dict]]:
    """A fresh live predictor over exactly the frames a session's predictor was given: what it
    answers for each, as the server answers."""
    runner = app.runner
    predictor = LivePredictor(runner.model, runner.options, runner.seq_len, "replay")
    try:
        answers = []
        for rgb, number, time_s, arrival in kept:
            faces = predictor(rgb, number, time_s, arrival)
            answers.append([face_json(f, runner.tasks) for f in faces if _of_frame(f, number)])
        return answers
    finally:
        predictor.close()


def _same_people(served: list[dict], replayed: list[dict]) -> None:
    """The server's people of a frame against a fresh predictor's: same labels, boxes within
    the rounding (names differ by the session's name prefix alone)."""
    assert len(served) == len(replayed)
    for s, r in zip(served, replayed, strict=True):
        assert s.get("label") == r.get("label") and s["colour"] == r["colour"]
        assert s["person"].split("_")[-1] == r["person"].split("_")[-1]
        assert np.allclose(s["box"], r["box"], atol=0.051), (s["box"], r["box"])


def test_a_real_face_is_answered_as_the_live_predictor_predicts_and_nothing_is_kept(trained_run):
    frames = portrait_frames(20)
    app = _make_app(trained_run, live_keep_frames=True)
    try:
        client = app.test_client()
        sid = client.post("/api/live").get_json()["id"]
        answers = []
        for rgb in frames:
            response = _post(client, sid, jpeg(rgb))
            assert response.status_code == 200, response.get_json()
            answers.append(response.get_json())
            time.sleep(1 / 30)
        assert [a["frame"] for a in answers] == list(range(1, 21))
        found = [a for a in answers if a["people"]]
        # a person is told apart after FaceOptions.min_track (10) faces: from frame 10 on
        assert len(found) >= 10 and all(a["people"] for a in answers[10:]), answers
        for answer in found:
            [face] = answer["people"]
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 and x1 - x0 > 60
            assert face["label"] in CLASS_NAMES and face["colour"] == PERSON_COLOURS[0]
            assert answer["server_ms"] > 0
        kept = app.live.kept[sid]
        assert len(kept) == 20 and kept[0][0].shape == (360, 640, 3)
        for answer, replayed in zip(answers, _replay(app, kept), strict=True):
            _same_people(answer["people"], replayed)
    finally:
        app.cleanup()
    # without the test hook no frame is kept, and nothing is written to disk
    app = _make_app(trained_run)
    try:
        client = app.test_client()
        before = sorted(app.runner.root.rglob("*"))
        sid = client.post("/api/live").get_json()["id"]
        assert _post(client, sid, jpeg(frames[0])).status_code == 200
        assert app.live.kept is None and sorted(app.runner.root.rglob("*")) == before
    finally:
        app.cleanup()


def test_jpeg_size_reads_the_frame_header():
    assert jpeg_size(jpeg(np.zeros((37, 53, 3), np.uint8))) == (53, 37)
    assert jpeg_size(b"\x89PNG\r\n") is None and jpeg_size(b"") is None


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "portrait.y4m"
    write_y4m(path, portrait_frames(75))
    return path


@pytest.fixture()
def browser_args(camera_clip) -> list[str]:
    """Chromium's camera is the clip; the permission is granted without asking."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_clip}",
    ]


def test_the_camera_page_draws_what_the_live_predictor_gives(browser, trained_run, capsys):
    """A real Chromium's fake camera plays the portrait clip: the page draws each answer's box
    and label, a timeline per person and its frames/s and latency; what it drew is what a
    fresh live predictor gives on exactly the frames the server received."""
    from werkzeug.serving import make_server

    app = _make_app(trained_run, live_keep_frames=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 1200})
        page.goto(f"http://127.0.0.1:{server.server_port}")
        page.click("#live-start")
        page.wait_for_function(
            "live && live.answers.filter((a) => a.people.length).length >= 20", timeout=180_000
        )
        page.wait_for_selector(".live-person[data-label]")
        readout = {key: page.inner_text(f"#live-{key}") for key in ("fps", "latency", "server")}
        fps, latency = float(readout["fps"]), float(readout["latency"])
        assert fps > 0 and latency > 0, readout
        # the overlay: the person's box and caption in their colour
        # the overlay: the last answer's boxes and captions, each in the person's colour, the
        # box's left, right and bottom edges where the frame's box falls on the shown video
        last, drawn = page.evaluate(
            """() => { const c = document.getElementById('live-overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const last = live.answers[live.answers.length - 1];
            const spans = last.people.map((face) => {
              const [r, g, b] = [1, 3, 5].map((i) => parseInt(face.colour.slice(i, i + 2), 16));
              const o = [0, 1e9, 1e9, -1, -1];  // n, x0, y0, x1, y1
              for (let p = 0; p < d.length; p += 4)
                if (d[p] === r && d[p + 1] === g && d[p + 2] === b && d[p + 3] === 255) {
                  const x = (p / 4) % c.width, y = Math.floor(p / 4 / c.width);
                  o[0]++; o[1] = Math.min(o[1], x); o[2] = Math.min(o[2], y);
                  o[3] = Math.max(o[3], x); o[4] = Math.max(o[4], y); }
              return o; });
            return [last, [c.width, c.height, spans]]; }"""
        )
        width, height, spans = drawn
        assert width > 300 and height > 150, drawn
        scale = min(width / last["width"], height / last["height"])
        ox, oy = (width - last["width"] * scale) / 2, (height - last["height"] * scale) / 2
        for face, (n, x0, _, x1, y1) in zip(last["people"], spans, strict=True):
            bx0, _, bx1, by1 = face["box"]
            assert n > 200, (face, n)  # the box's outline and its caption
            assert abs(x0 - (ox + bx0 * scale)) < 4 and abs(y1 - (oy + by1 * scale)) < 4, spans
            assert x1 > ox + bx1 * scale - 4, spans  # the caption may be wider than the box
        # each person: their current label and a painted rolling timeline
        people = page.evaluate(
            """() => [...document.querySelectorAll('.live-person')].map((n) => {
              const c = n.querySelector('canvas');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let painted = 0; for (let i = 3; i < d.length; i += 4) painted += d[i] > 0;
              return [n.dataset.person, n.dataset.label,
                n.querySelector('.current-expression').textContent, painted]; })"""
        )
        assert people and all(label == shown for _, label, shown, _ in people), people
        assert all(painted > 0 for *_, painted in people), people
        page.click("#live-stop")
        page.wait_for_selector("#live-stop", state="hidden")
        answers = page.evaluate("() => live.answers")
        sid = page.evaluate("() => live.id")
        deadline = time.time() + 10
        while sid in app.live.sessions and time.time() < deadline:
            time.sleep(0.1)
        assert sid not in app.live.sessions  # the page ended its session
        kept = app.live.kept[sid]
        assert {a["frame"] for a in answers} <= set(range(1, len(kept) + 1))
        replayed = _replay(app, kept)
        for answer in answers:
            _same_people(answer["people"], replayed[answer["frame"] - 1])
        # the labels the page shows last are those of the last answer it drew
        last = answers[-1]
        shown = dict((name, label) for name, label, *_ in people)
        server_ms = np.mean([a["server_ms"] for a in answers])
        with capsys.disabled():
            print(
                f"\ncamera page: {fps} frames/s, latency {latency} ms (capture to drawn), "
                f"server {server_ms:.0f} ms a frame, {len(answers)} frames, "
                f"{sum(bool(a['people']) for a in answers)} with a face; last {last['people']}"
                f" shown {shown}"
            )
    finally:
        server.shutdown()
        app.cleanup()
