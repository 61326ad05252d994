"""abaw-expr serve: the Flask app through its test client, then the page in a real browser."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from abaw_expr.cli import main
from abaw_expr.serve import create_app
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.video.outputs import PERSON_COLOURS
from abaw_expr.video.tracks import FaceOptions

from .conftest import CPU_EAGER, wait_for_job


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "my clip.mp4"
    write_synthetic_video(path, 40, size=(320, 180), face_px=110, absent=((15, 20),), seed=4)
    return path


@pytest.fixture()
def app(trained_run, tmp_path):
    app = create_app(trained_run / "best.ckpt", max_upload_mb=1, settings=CPU_EAGER)
    yield app
    app.cleanup()


def test_upload_process_and_download(app, clip):
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    assert 'id="timeline"' in page and 'id="people"' in page and "1 MB" in page
    with open(clip, "rb") as handle:
        response = client.post("/api/jobs", data={"video": (handle, clip.name)})
    assert response.status_code == 202
    job = wait_for_job(client, response.get_json()["id"])
    assert job["state"] == "done", job
    assert job["name"] == "my_clip" and job["frames_done"] == 40
    base = f"/api/jobs/{job['id']}/files/"
    result = client.get(base + job["outputs"]["result"]).get_json()
    [person] = result["people"]  # one person: named as the video, the first colour
    assert person["name"] == "my_clip" and person["colour"] == PERSON_COLOURS[0]
    assert len(result["time_s"]) == len(person["label"]) == len(person["probabilities"]) == 40
    assert sum(person["face"][14:20]) == 0 and sum(person["face"]) >= 20
    assert person["files"] == {"csv": "my_clip.csv", "txt": "my_clip.txt", "png": "my_clip.png"}
    assert job["outputs"]["csv:my_clip"] == "my_clip.csv"
    download = client.get(base + person["files"]["csv"])
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 40 and [int(r["label"]) for r in rows] == person["label"]
    # The face's box per frame, in the video's pixels, for the page to draw over the preview.
    assert (result["width"], result["height"]) == (320, 180)
    boxes = person["box"]
    assert len(boxes) == 40 and [b is not None for b in boxes] == [bool(f) for f in person["face"]]
    for box in filter(None, boxes):
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 180 and 60 < x1 - x0 < 180
    preview = client.get(base + job["outputs"]["preview"]).get_data()
    assert preview[:4] == b"\x1a\x45\xdf\xa3"  # WebM (Matroska): playable in browsers
    with av.open(io.BytesIO(preview)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("vp8", "libvpx")
        times = [frame.time for frame in container.decode(stream)]
    assert (stream.width, stream.height) == (320, 180)
    assert len(times) == 40  # every frame, each at its own time
    assert max(abs(a - b) for a, b in zip(times, result["time_s"], strict=True)) < 0.002
    folder = app.runner.folder(job["id"])
    assert folder.is_dir() and str(folder).startswith(str(app.runner.root))


def test_only_the_jobs_own_files_are_served(app, clip):
    client = app.test_client()
    with open(clip, "rb") as handle:
        job = client.post("/api/jobs", data={"video": (handle, clip.name)}).get_json()
    job = wait_for_job(client, job["id"])
    for name in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "my_clip.mp4", "other.csv"):
        assert client.get(f"/api/jobs/{job['id']}/files/{name}").status_code == 404
    assert client.get("/api/jobs/0123456789abcdef/files/x.csv").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404
    # A video called "result": its <video>.json would overwrite the page's result.json.
    with open(clip, "rb") as handle:
        job = client.post("/api/jobs", data={"video": (handle, "result.mp4")}).get_json()
    job = wait_for_job(client, job["id"])
    assert job["name"] == "result_video" and job["outputs"]["record"] == "result_video.json"
    result = client.get(f"/api/jobs/{job['id']}/files/result.json").get_json()
    assert [p["name"] for p in result["people"]] == ["result_video"]


def test_uploads_are_size_limited_and_must_be_videos(app, tmp_path):
    client = app.test_client()
    big = io.BytesIO(b"\0" * (2 * 2**20))  # over the 1 MB limit of this app
    response = client.post("/api/jobs", data={"video": (big, "big.mp4")})
    assert response.status_code == 413 and "1 MB" in response.get_json()["error"]
    response = client.post("/api/jobs", data={"video": (io.BytesIO(b"x"), "notes.txt")})
    assert response.status_code == 400
    # a camera's upper-case suffix is a video too (the job then fails on these bytes)
    response = client.post("/api/jobs", data={"video": (io.BytesIO(b"x"), "CLIP.MP4")})
    assert response.status_code == 202
    assert client.post("/api/jobs", data={}).status_code == 400


def test_a_broken_upload_fails_with_a_reason_and_the_server_goes_on(app, clip):
    client = app.test_client()
    bad = client.post("/api/jobs", data={"video": (io.BytesIO(b"garbage" * 100), "bad.mp4")})
    job = wait_for_job(client, bad.get_json()["id"])
    assert job["state"] == "failed" and "bad.mp4" in job["error"]
    assert str(app.runner.root) not in job["error"]  # no server paths in what the page shows
    with open(clip, "rb") as handle:
        good = client.post("/api/jobs", data={"video": (handle, clip.name)}).get_json()
    assert wait_for_job(client, good["id"])["state"] == "done"


def test_the_temporary_folder_is_removed_when_the_server_stops(trained_run):
    app = create_app(trained_run / "best.ckpt", settings=CPU_EAGER)
    root = app.runner.root
    assert root.is_dir()
    app.cleanup()
    assert not root.exists()


@pytest.fixture()
def live_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_page_in_a_real_browser(live_server, clip, tmp_path, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(live_server)
    page.set_input_files("#file", str(clip))
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=180_000)
    painted = page.evaluate(
        """() => { const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"""
    )
    assert painted > 0.5 * 940 * 150  # the stacked probabilities fill the strip
    # Frame 1 has a face: its box and expression are drawn over the video.
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    overlay = page.evaluate(
        """() => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
        return [c.width, c.height, n]; }"""
    )
    assert overlay[0] > 300 and overlay[1] > 150 and overlay[2] > 200, overlay
    assert page.inner_text("#current-expression") != "-"
    href = page.get_attribute("#download-csv", "href")
    assert href.endswith("my_clip.csv")
    with urllib.request.urlopen(live_server + href) as response:
        assert response.read().decode().startswith("frame,time_s,face,status,label")
    # Clicking the timeline moves the playhead and the shown frame.
    page.click("#timeline", position={"x": 900, "y": 40})
    assert "frame 3" in page.inner_text("#current-detail") or "frame" in page.inner_text(
        "#current-detail"
    )
    if os.environ.get("ABAW_EXPR_SCREENSHOT"):
        page.screenshot(path=os.environ["ABAW_EXPR_SCREENSHOT"], full_page=True)


# Two people: the left one from the first frame, the right one entering at frame 8. Drawn faces
# are followed with HOG, as tests/test_video.py does (DRAWN there).
PEOPLE = [
    {"start": (170, 170), "end": (200, 185), "expression": 4, "face_px": 130},
    {"start": (470, 180), "end": (440, 170), "expression": 5, "face_px": 130, "enter": 8},
]


@pytest.fixture(scope="module")
def people_clip(tmp_path_factory):
    from abaw_expr.synthetic.video import Walker, write_people_video

    path = tmp_path_factory.mktemp("people") / "pair.mp4"
    truths = write_people_video(path, 36, [Walker(**p) for p in PEOPLE], seed=5)
    return path, truths


def _people_app(trained_run, faces: str = "all"):
    options = FaceOptions(detector="dlib-hog", faces=faces)
    return create_app(trained_run / "best.ckpt", options=options, settings=CPU_EAGER)


def _run_job(app, clip: Path) -> tuple[dict, dict]:
    client = app.test_client()
    with open(clip, "rb") as handle:
        job = client.post("/api/jobs", data={"video": (handle, clip.name)}).get_json()
    job = wait_for_job(client, job["id"])
    assert job["state"] == "done", job
    return job, client.get(f"/api/jobs/{job['id']}/files/result.json").get_json()


def test_every_person_has_their_boxes_tracks_and_files(trained_run, people_clip, tmp_path):
    clip, truths = people_clip
    app = _people_app(trained_run)
    try:
        job, result = _run_job(app, clip)
        client = app.test_client()
        base = f"/api/jobs/{job['id']}/files/"
        left, right = result["people"]
        assert [left["name"], right["name"]] == ["pair_left", "pair_right"]
        assert [left["colour"], right["colour"]] == list(PERSON_COLOURS[:2])
        assert (result["width"], result["height"]) == (640, 360) and len(result["time_s"]) == 36
        for person, truth in zip((left, right), truths, strict=True):
            assert len(person["label"]) == len(person["box"]) == len(person["face"]) == 36
            face = np.array(person["face"], bool)
            assert not face[~truth.visible].any()  # only their own frames
            assert face[truth.visible].mean() > 0.8
            for i in np.flatnonzero(face):  # each box around this person's face, not the other's
                x0, y0, x1, y1 = person["box"][i]
                cx, cy = np.nanmean(truth.points[i], axis=0)
                assert x0 < cx < x1 and y0 < cy < y1, (person["name"], i)
            assert [b is not None for b in person["box"]] == face.tolist()
        # Each person's files and the video's record, downloaded by their exact names.
        out = tmp_path / "predicted"
        code = main(
            ["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--video", str(clip),
             "--out", str(out), "--detector", "dlib-hog", "--device", "cpu", "--engine", "eager"]
        )  # fmt: skip
        assert code == 0
        for person in (left, right):
            name = person["name"]
            assert person["files"] == {
                "csv": f"{name}.csv",
                "txt": f"{name}.txt",
                "png": f"{name}.png",
            }
            for kind, file in person["files"].items():
                assert job["outputs"][f"{kind}:{name}"] == file
                download = client.get(base + file)
                assert download.status_code == 200, file
                if kind == "png":  # the same picture (no byte-exact promise from matplotlib)
                    served = cv2.imdecode(np.frombuffer(download.get_data(), np.uint8), 1)
                    np.testing.assert_array_equal(served, cv2.imread(str(out / file)))
                else:
                    assert download.get_data() == (out / file).read_bytes(), file
            rows = list(
                csv.DictReader(io.StringIO(client.get(base + f"{name}.csv").get_data(as_text=True)))
            )
            assert [int(r["label"]) for r in rows] == person["label"]
        record = client.get(base + job["outputs"]["record"])
        assert job["outputs"]["record"] == "pair.json" and record.status_code == 200
        served, written = record.get_json(), json.loads((out / "pair.json").read_text())
        assert served["people"] == written["people"] and served["frames"] == 36
        assert served["source"] == "pair.mp4"  # no server path in what is served
        for name in ("pair.mp4", "pair.csv", "pair_left.json", "../pair.json", "pair_left/csv"):
            assert client.get(base + name).status_code == 404
    finally:
        app.cleanup()


def test_faces_one_follows_the_subject_alone(trained_run, people_clip):
    from abaw_expr.cli import build_parser
    from abaw_expr.cli.arguments import face_options

    parser = build_parser()
    assert face_options(parser.parse_args(["serve", "--checkpoint", "c"])).faces == "all"
    assert (
        face_options(parser.parse_args(["serve", "--checkpoint", "c", "--faces", "one"])).faces
        == "one"
    )
    clip, _ = people_clip
    app = _people_app(trained_run, faces="one")
    try:
        job, result = _run_job(app, clip)
        [person] = result["people"]
        assert person["name"] == "pair" and sum(person["face"]) >= 20
        assert {"csv:pair", "txt:pair", "png:pair", "record"} <= set(job["outputs"])
    finally:
        app.cleanup()


def test_the_page_shows_every_person_in_a_real_browser(browser, trained_run, people_clip):
    """A timeline per person, titled in their colour, and in frame 12 (both in view) a box per
    person in their colour around their face."""
    from werkzeug.serving import make_server

    clip, _ = people_clip
    app = _people_app(trained_run)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(f"http://127.0.0.1:{server.server_port}")
        page.set_input_files("#file", str(clip))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=180_000)
        people = page.evaluate("() => people")
        assert [q["name"] for q in people] == ["pair_left", "pair_right"]
        # One timeline per person, each painted, each under its person's name and colour.
        for k, person in enumerate(people):
            suffix = f"-{k}" if k else ""
            assert page.is_visible(f"#timeline{suffix}")
            painted = page.evaluate(
                """(id) => { const c = document.getElementById(id);
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""",
                f"timeline{suffix}",
            )
            assert painted > 0.5 * 940 * 150
            assert page.inner_text(f"#person-title{suffix} .name") == person["name"]
            swatch = page.eval_on_selector(
                f"#person-title{suffix} i", "e => getComputedStyle(e).backgroundColor"
            )
            assert swatch == "rgb({}, {}, {})".format(*_rgb(person["colour"]))
            href = page.get_attribute(f"#download-csv{suffix}", "href")
            assert href.endswith(f"/{person['name']}.csv")
        assert page.get_attribute("#download-record", "href").endswith("/pair.json")
        assert page.locator("canvas.strip.expr:visible").count() == 2
        # Frame 12: both faces in view. Each person's colour on the overlay, within their box.
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        i = 11
        assert all(q["box"][i] for q in people)
        # as a click on the timeline does; the page redraws at the video's time
        page.evaluate(f"() => {{ $('player').currentTime = result.time_s[{i}]; }}")
        page.wait_for_function(f"frameAt($('player').currentTime) === {i}")
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        assert page.inner_text("#current-detail").startswith(f"frame {i + 1},")
        found = page.evaluate(
            """(colours) => { const c = document.getElementById('overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const out = colours.map(() => [0, 1e9, 1e9, -1, -1]);  // n, x0, y0, x1, y1
            for (let p = 0; p < d.length; p += 4) colours.forEach(([r, g, b], k) => {
              if (d[p] === r && d[p + 1] === g && d[p + 2] === b && d[p + 3] === 255) {
                const x = (p / 4) % c.width, y = Math.floor(p / 4 / c.width), o = out[k];
                o[0]++; o[1] = Math.min(o[1], x); o[2] = Math.min(o[2], y);
                o[3] = Math.max(o[3], x); o[4] = Math.max(o[4], y); } });
            return [c.width, c.height, out]; }""",
            [_rgb(q["colour"]) for q in people],
        )
        width, height, spans = found
        scale = min(width / 640, height / 360)
        ox, oy = (width - 640 * scale) / 2, (height - 360 * scale) / 2
        for person, (n, x0, y0, x1, y1) in zip(people, spans, strict=True):
            bx0, by0, bx1, by1 = person["box"][i]
            assert n > 200, (person["name"], n)  # the box's outline and its label
            # the box: left, right and bottom edges (the label sits above the top edge)
            assert abs(x0 - (ox + bx0 * scale)) < 4 and abs(y1 - (oy + by1 * scale)) < 4
            assert abs(x1 - (ox + bx1 * scale)) < 4 or x1 > ox + bx1 * scale  # a long label
            assert y0 < oy + by0 * scale
    finally:
        server.shutdown()
        app.cleanup()


def _rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def test_only_the_newest_keep_jobs_are_kept_and_a_running_one_never_goes(tmp_path):
    """jobs.py: only the newest ``keep`` jobs are kept; the older finished ones go, folder and
    all, and a job not yet finished stays whatever its age."""
    from types import SimpleNamespace

    from abaw_expr.serve.jobs import Job, JobRunner

    runner = SimpleNamespace(root=tmp_path, keep=3, jobs={}, folder=lambda i: tmp_path / i)
    states = ["running", "done", "failed", "done", "done"]
    for k, state in enumerate(states):  # created in this order, the first the oldest
        job = Job(f"job{k}", "v", state=state, created=1000.0 + k)
        (tmp_path / job.id).mkdir()
        runner.jobs[job.id] = job
    JobRunner._forget_old(runner)
    # 5 jobs, 3 to keep: the 2 oldest finished ones go; the oldest job, still running, stays
    assert sorted(runner.jobs) == ["job0", "job3", "job4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job0", "job3", "job4"]


def test_person_colours_are_distinct_then_start_again_from_the_first():
    from abaw_expr.video.outputs import person_colour

    n = len(PERSON_COLOURS)
    first = [person_colour(k) for k in range(n)]
    assert len(set(first)) == n  # the first n people: a colour each
    assert [person_colour(n + k) for k in range(n)] == first  # then again from the first
