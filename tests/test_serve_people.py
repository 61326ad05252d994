"""serve's page with several people stays readable: people listed by time in view, those in
view for under a second folded, and one person picked: their timelines alone, their box bold."""

from __future__ import annotations

import math
import threading

import pytest

from abaw_expr.serve import create_app
from abaw_expr.video.tracks import FaceOptions

from .conftest import CPU_EAGER

# At 25 frames/s: the middle person in view 40 frames (1.6 s), the left one 30 (1.2 s), the
# right one 15 (0.6 s: folded). Drawn faces are followed with HOG (tests/test_video.py's DRAWN).
PEOPLE = [
    {"start": (110, 180), "end": (120, 180), "expression": 4, "face_px": 110, "enter": 11},
    {"start": (320, 180), "end": (330, 180), "expression": 5, "face_px": 110},
    {"start": (530, 180), "end": (520, 180), "expression": 6, "face_px": 110, "leave": 15},
]


@pytest.fixture(scope="module")
def three_clip(tmp_path_factory):
    from abaw_expr.synthetic.video import Walker, write_people_video

    path = tmp_path_factory.mktemp("three") / "three.mp4"
    write_people_video(path, 40, [Walker(**p) for p in PEOPLE], seed=5)
    return path


def _count_colours(page, colours: list[str]) -> list[int]:
    """Pixels of the overlay in exactly each colour (hex), fully opaque."""
    rgb = [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours]
    return page.evaluate(
        """(colours) => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const n = colours.map(() => 0);
        for (let p = 0; p < d.length; p += 4) colours.forEach(([r, g, b], k) => {
          if (d[p] === r && d[p + 1] === g && d[p + 2] === b && d[p + 3] === 255) n[k]++; });
        return n; }""",
        rgb,
    )


def test_people_by_time_in_view_the_brief_folded_and_one_picked(browser, trained_run, three_clip):
    from werkzeug.serving import make_server

    options = FaceOptions(detector="dlib-hog", faces="all")
    app = create_app(trained_run / "best.ckpt", options=options, settings=CPU_EAGER)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"http://127.0.0.1:{server.server_port}")
        page.set_input_files("#file", str(three_clip))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=180_000)
        people = page.evaluate("() => people")
        seen = [sum(q["face"]) for q in people]
        assert len(people) == 3 and seen == sorted(seen, reverse=True), seen
        assert seen[0] >= 35 and seen[-1] < 25  # the right one is in view under a second
        # The longest first, with their time in view; the brief one folded, out of sight.
        titles = [page.text_content(f"#person-title{'-' + str(k) if k else ''}") for k in range(3)]
        tenths = [math.floor(n / 25 * 10 + 1e-9) / 10 for n in seen]  # rounded down
        assert titles == [
            f"{q['name']} in view {t:.1f} s" for q, t in zip(people, tenths, strict=True)
        ]
        assert page.is_visible("#brief") and page.inner_text("#brief-summary") == (
            "1 person in view for under a second"
        )
        assert not page.is_visible("#timeline-2") and page.is_visible("#timeline-1")
        assert page.evaluate("() => $('brief').contains($('person-2'))")
        page.click("#brief-summary")  # unfolded on demand
        assert page.is_visible("#timeline-2")

        # Frame 12: all three in view. Picking the second person shows their timeline alone
        # and draws their box bold, the others faint (no pixel in their exact colour).
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        page.evaluate("() => { $('player').currentTime = result.time_s[11]; }")
        page.wait_for_function("frameAt($('player').currentTime) === 11")
        assert all(q["box"][11] for q in people)
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        colours = [q["colour"] for q in people]
        everyone = _count_colours(page, colours)
        assert all(n > 200 for n in everyone), everyone
        page.select_option("#pick", "1")
        assert page.is_visible("#timeline-1")
        assert not page.is_visible("#timeline") and not page.is_visible("#timeline-2")
        assert not page.is_visible("#brief")
        assert page.is_visible("#downloads-person-1") and not page.is_visible("#downloads-person")
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        one = _count_colours(page, colours)
        assert one[0] == 0 and one[2] == 0 and one[1] > 1.5 * everyone[1], (everyone, one)
        # Clicking a picked person's name again shows everyone.
        page.click("#person-title-1")
        assert page.input_value("#pick") == "" and page.is_visible("#timeline")
        assert page.is_visible("#downloads-person") and page.is_visible("#downloads-person-2")
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        assert _count_colours(page, colours)[0] > 200
    finally:
        server.shutdown()
        app.cleanup()
