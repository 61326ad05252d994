"""The README's screenshots, made by the project's own code from the demo's outputs.

    make demo && .venv/bin/python docs/screenshots.py demo_out

Opens ``demo_out/report.html`` in headless Chromium and saves ``docs/report.png``; starts the
``serve`` app on the demo's checkpoint, uploads the demo's video through the page, moves the
playhead into the second expression and saves ``docs/serve.png``. Needs Debian's chromium and
the ``playwright`` package (dev extra).
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.serve import create_app

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    demo = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_out")
    docs = Path(__file__).parent
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    app = create_app(demo / "best.ckpt", settings=InferenceSettings(device="cpu"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1180, "height": 900})
            page.goto((demo / "report.html").resolve().as_uri())
            page.screenshot(
                path=str(docs / "report.png"),
                clip={"x": 0, "y": 0, "width": 1180, "height": 1500},
                full_page=True,
            )
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.set_input_files("#file", str(demo / "video" / "clip.mp4"))
            page.click("#submit")
            page.wait_for_selector("#result:not([hidden])", timeout=300_000)
            page.evaluate(
                "() => { const v = document.getElementById('player'); v.currentTime = 2.2; }"
            )
            page.wait_for_timeout(800)
            page.screenshot(path=str(docs / "serve.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        app.cleanup()
    print(f"wrote {docs / 'report.png'} and {docs / 'serve.png'}")


if __name__ == "__main__":
    main()
