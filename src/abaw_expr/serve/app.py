"""The Flask app: one page, an upload endpoint, job status, and the job's files; and the
camera mode's sessions (:mod:`.live`): ``POST /api/live`` starts one, ``POST
/api/live/<id>/frame`` (an ``image/jpeg`` body) answers a frame, ``DELETE /api/live/<id>`` (or
``POST /api/live/<id>/end``) ends it.

Binds to 127.0.0.1 by default; uploads are limited in size (``max_upload_mb``), must have a
video suffix, and are stored in a temporary folder that is removed when the server stops.
Camera frames are never stored: see :mod:`.live` for their bounds (``live_limits``).
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
from abaw_expr.serve.live import LiveError, LiveLimits, LiveSessions
from abaw_expr.tasks import CLASS_NAMES
from abaw_expr.video.reader import VIDEO_SUFFIXES
from abaw_expr.video.tracks import FaceOptions


def create_app(
    checkpoint: Path | str,
    work_dir: Path | str | None = None,
    max_upload_mb: int = 500,
    options: FaceOptions | None = None,
    settings: InferenceSettings | None = None,
    live_limits: LiveLimits | None = None,
    live_keep_frames: bool = False,
    live_predictor=None,
) -> Flask:
    """The app: ``app.runner`` (jobs), ``app.live`` (camera sessions), ``app.cleanup()``.
    ``settings``: how the model runs (:class:`.jobs.JobRunner`); ``live_limits``: the camera's
    bounds (:class:`.live.LiveLimits`); ``live_keep_frames``: keep decoded camera frames in
    ``app.live.kept`` (a test hook); ``live_predictor(model, options, seq_len, name)``: a
    session's predictor (default: a ``LivePredictor`` writing no files)."""
    root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="abaw-expr-serve-"))
    runner = JobRunner(checkpoint, root, options, settings)
    make = live_predictor or _live_predictor
    predictor = lambda name: make(runner.model, runner.options, runner.seq_len, name)  # noqa: E731
    live = LiveSessions(predictor, runner.tasks, live_limits, keep_frames=live_keep_frames)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_mb * 2**20
    page = _page(runner.model_fields["model_warning"], live.limits)
    limits = live.limits

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

    _camera_routes(app, live, runner.tasks)

    @app.errorhandler(413)
    def too_large(_):
        if request.path.startswith("/api/live/"):
            return jsonify(error=f"the frame is larger than {limits.max_bytes / 2**20:g} MB"), 413
        return jsonify(error=f"the video is larger than {max_upload_mb} MB"), 413

    def cleanup() -> None:
        live.close()
        runner.close()
        if work_dir is None:
            shutil.rmtree(root, ignore_errors=True)

    app.runner = runner  # type: ignore[attr-defined]
    app.live = live  # type: ignore[attr-defined]
    app.cleanup = cleanup  # type: ignore[attr-defined]
    return app


def _page(warning: str | None, limits: LiveLimits) -> str:
    """The page, with the model's warning (if any) and the camera's bounds filled in."""
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    banner = (
        f'<div class="model-warning" id="model-warning" role="alert"><b>Warning:</b> '
        f"{html.escape(warning)}</div>"
        if warning
        else ""
    )
    page = page.replace("{{MODEL_WARNING}}", banner)
    page = page.replace("{{LIVE_MAX_FPS}}", f"{limits.max_fps:g}")
    page = page.replace("{{LIVE_MAX_WIDTH}}", str(limits.max_width))
    return page.replace("{{LIVE_MAX_HEIGHT}}", str(limits.max_height))


def _camera_routes(app: Flask, live: LiveSessions, tasks) -> None:
    """The camera mode's endpoints: start a session, one frame, end it (see :mod:`.live`)."""
    limits = live.limits

    @app.post("/api/live")
    def live_start():
        session = live.start()
        return jsonify(
            id=session.id,
            tasks=list(tasks),
            classes=list(CLASS_NAMES),
            max_fps=limits.max_fps,
            max_width=limits.max_width,
            max_height=limits.max_height,
            idle_s=limits.idle_s,
        ), 201

    @app.post("/api/live/<sid>/frame")
    def live_frame(sid: str):
        if (request.content_length or 0) > limits.max_bytes:  # refused before it is read
            raise LiveError(413, f"the frame is larger than {limits.max_bytes / 2**20:g} MB")
        return jsonify(live.frame(sid, request.get_data(cache=False), request.content_type))

    @app.route("/api/live/<sid>", methods=["DELETE"])
    @app.post("/api/live/<sid>/end")
    def live_end(sid: str):
        if not live.end(sid):
            raise LiveError(404, f"no camera session {sid[:12]}")
        return jsonify(ended=sid)

    @app.errorhandler(LiveError)
    def live_refused(err: LiveError):
        return jsonify(error=err.message), err.status


def _live_predictor(model, options: FaceOptions, seq_len: int, name: str):
    """A camera session's predictor: its own tracks and windows over the shared model."""
    from abaw_expr.video.live.predictor import LivePredictor

    return LivePredictor(model, options, seq_len, name, out_dir=None)


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
