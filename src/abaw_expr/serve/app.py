"""The Flask app: one page, an upload endpoint, job status, and the job's files.

Binds to 127.0.0.1 by default; uploads are limited in size (``max_upload_mb``), must have a
video suffix, and are stored in a temporary folder that is removed when the server stops.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from flask import Flask, abort, jsonify, request, send_from_directory
from werkzeug.utils import secure_filename

from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.serve.jobs import JobRunner
from abaw_expr.video.reader import VIDEO_SUFFIXES
from abaw_expr.video.tracks import FaceOptions


def create_app(
    checkpoint: Path | str,
    work_dir: Path | str | None = None,
    max_upload_mb: int = 500,
    options: FaceOptions | None = None,
    settings: InferenceSettings | None = None,
) -> Flask:
    """The app; ``app.runner`` holds the jobs and ``app.cleanup()`` stops it and removes its
    temporary folder. ``settings``: how the model runs (see :class:`.jobs.JobRunner`)."""
    root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="abaw-expr-serve-"))
    runner = JobRunner(checkpoint, root, options, settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_mb * 2**20
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    warning = runner.model_fields["model_warning"]
    banner = (
        f'<div class="model-warning" id="model-warning" role="alert"><b>Warning:</b> '
        f"{html.escape(warning)}</div>"
        if warning
        else ""
    )
    page = page.replace("{{MODEL_WARNING}}", banner)

    @app.get("/")
    def index():
        return page.replace("{{MAX_MB}}", str(max_upload_mb))

    @app.post("/api/jobs")
    def upload():
        file = request.files.get("video")
        if file is None or not file.filename:
            return jsonify(error="no file in the form field 'video'"), 400
        name = secure_filename(file.filename) or "video.mp4"
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            return jsonify(error=f"not a video file name ({', '.join(VIDEO_SUFFIXES)})"), 400
        job = runner.submit(name, file.save)
        return jsonify(job.public()), 202

    @app.get("/api/jobs/<job_id>")
    def status(job_id: str):
        job = runner.get(job_id)
        if job is None:
            abort(404)
        return jsonify(job.public())

    @app.get("/api/jobs/<job_id>/files/<path:name>")  # path: va/<video>.txt
    def files(job_id: str, name: str):
        job = runner.get(job_id)
        if job is None or job.state != "done" or name not in job.outputs.values():
            abort(404)  # only the job's own outputs, by their exact names
        return send_from_directory(
            runner.folder(job_id),
            name,
            as_attachment=name.endswith((".csv", ".txt")),
            download_name=name.replace("/", "_"),  # va/<video>.txt -> va_<video>.txt
        )

    @app.errorhandler(413)
    def too_large(_):
        return jsonify(error=f"the video is larger than {max_upload_mb} MB"), 413

    def cleanup() -> None:
        runner.close()
        if work_dir is None:
            shutil.rmtree(root, ignore_errors=True)

    app.runner = runner  # type: ignore[attr-defined]
    app.cleanup = cleanup  # type: ignore[attr-defined]
    return app


def serve(
    checkpoint: Path | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: int = 500,
    options: FaceOptions | None = None,
    settings: InferenceSettings | None = None,
) -> None:
    from werkzeug.serving import make_server

    app = create_app(checkpoint, None, max_upload_mb, options, settings)
    server = make_server(host, port, app, threaded=True)
    print(f"abaw-expr serve: http://{host}:{server.server_port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.cleanup()
