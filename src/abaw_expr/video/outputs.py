"""A video's prediction files: ``<video>.csv`` (every frame: time, face status, then the
checkpoint's tracks), the ABAW submission files, ``<video>.png`` (timeline), on request
``<video>.annotated.mp4`` (one per video, every person's box on it), and last the video's ``<video>.json`` record of its people.

What a checkpoint predicts decides the columns of ``<video>.csv`` after
``frame,time_s,face,status``:

- the expression track alone (the paper's model): ``label,expression`` and the 8 class
  probabilities by class name, exactly as before the other tracks existed;
- any other set of tracks, in the order expr, va, au, only those it has:
  ``label,expression,<8 class probabilities>``; ``valence,arousal`` (the head's tanh'd
  values averaged over windows, in [-1, 1]); ``AU1,...,AU26`` as 0/1 (an AU is on at a
  probability of 0.5 or more, or of its threshold fitted by ``evaluate --fit-au-thresholds``
  beside the checkpoint, as ``predict`` decides for the submission files) and then
  ``AU1_prob,...,AU26_prob``, the probabilities themselves: they show how sure each call
  is, and let a user pick other thresholds without running the model again.

With ``predict --compound`` the expression columns are followed by
``compound,compound_expression`` (the compound class 0..6 and its name) and the 7 compounds'
scores, named as in C-EXPR-DB's header (``Fearfully_Surprised,...``): each the mean of its two
classes' probabilities (:mod:`abaw_expr.inference.compound`).

The ABAW submission files follow ``predict --images``: the expression track alone writes
``<video>.txt`` (one label per frame); other checkpoints write ``<track>/<video>.txt`` for
each of their tracks, in ABAW3's per-video layout of that track. With ``--compound``,
``compound/<video>.csv`` holds the video's rows of C-EXPR-DB's one-file layout, and
:func:`write_compound_submission` joins every such file of the output folder into
``compound.csv``.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.data.annotations import format_task_file, write_labels
from abaw_expr.evaluation.compound_file import (
    COMPOUND_HEADER,
    format_compound_file,
    read_compound_file,
)
from abaw_expr.inference.compound import COMPOUND_COLUMNS, COMPOUND_NAMES
from abaw_expr.report.timeline import CLASS_COLOURS, plot_timeline
from abaw_expr.tasks import AU_NAMES, CLASS_NAMES, TASKS, VA_NAMES
from abaw_expr.video.batch import record_path, source_stamp
from abaw_expr.video.prediction import VideoPrediction
from abaw_expr.video.reader import read_frames
from abaw_expr.video.tracks import STATUS_NAMES, FaceOptions
from abaw_expr.writers import atomic_write, atomic_write_json, atomic_write_text

# person k's colour (k = 0, 1, ...; then again from the first): unlike the expressions' colours
PERSON_COLOURS = ("#ff7f0e", "#00c853", "#2979ff", "#ff1744", "#d500f9", "#ffd600", "#00b8d4")
AU_PROBABILITY_COLUMNS = tuple(f"{name}_prob" for name in AU_NAMES)
COMPOUND_DIR = "compound"  # predict --compound: compound/<video>.csv per video


def prediction_columns(tasks, compound: bool = False) -> list[str]:
    """The header of ``<video>.csv`` for a checkpoint of ``tasks`` (see the module's text)."""
    columns = ["frame", "time_s", "face", "status"]
    if "expr" in tasks:
        columns += ["label", "expression", *CLASS_NAMES]
    if compound and "expr" in tasks:
        columns += ["compound", "compound_expression", *COMPOUND_COLUMNS]
    if "va" in tasks:
        columns += list(VA_NAMES)
    if "au" in tasks:
        columns += [*AU_NAMES, *AU_PROBABILITY_COLUMNS]
    return columns


def prediction_csv(prediction: VideoPrediction) -> str:
    faces = prediction.faces
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(prediction_columns(prediction.tasks, prediction.compound))
    labels, probs = prediction.labels, prediction.probabilities
    compound, scores = prediction.compound_labels, prediction.compound_scores
    va, aus, au_probs = prediction.va, prediction.aus, prediction.au_probabilities
    for i in range(faces.num_frames):
        writer.writerow(
            frame_row(
                i + 1,
                faces.time_s[i],
                bool(faces.has_face[i]),
                STATUS_NAMES[int(faces.status[i])],
                *(None if x is None else x[i] for x in (labels, probs, compound, scores)),
                *(None if x is None else x[i] for x in (va, aus, au_probs)),
            )
        )
    return buffer.getvalue()


def frame_row(
    number: int,
    time_s: float,
    face: bool,
    status: str,
    label=None,
    probabilities=None,
    compound=None,
    compound_scores=None,
    va=None,
    aus=None,
    au_probabilities=None,
) -> list:
    """One frame's row of ``<video>.csv`` (:func:`prediction_columns`): the tracks given, the
    others None. ``live`` writes these rows as they happen."""
    row = [number, f"{time_s:.4f}", int(face), status]
    if label is not None:
        row += [int(label), CLASS_NAMES[label], *(f"{p:.5f}" for p in probabilities)]
    if compound is not None:
        row += [int(compound), COMPOUND_NAMES[compound], *(f"{p:.5f}" for p in compound_scores)]
    if va is not None:
        row += [f"{v:.5f}" for v in va]
    if aus is not None:
        row += [*(int(a) for a in aus), *(f"{p:.5f}" for p in au_probabilities)]
    return row


def submission_files(prediction: VideoPrediction) -> dict[str, str]:
    """The ABAW submission files of one prediction, by their path under the output folder:
    ``<video>.txt`` for the expression track alone, else ``<track>/<video>.txt`` per track."""
    name = prediction.name
    if prediction.tasks == ("expr",):
        return {"expr": f"{name}.txt"}
    return {task: f"{task}/{name}.txt" for task in prediction.tasks}


def write_outputs(prediction: VideoPrediction, out_dir: Path) -> None:
    """One person's files: ``<name>.csv``, the submission files and ``<name>.png``."""
    start = time.perf_counter()
    name = prediction.name
    atomic_write_text(out_dir / f"{name}.csv", prediction_csv(prediction))
    for task, path in submission_files(prediction).items():
        if prediction.tasks == ("expr",):
            write_labels(out_dir / path, prediction.labels)
        else:
            text = format_task_file(TASKS[task], prediction.track(task))
            atomic_write_text(out_dir / path, text)
    if prediction.compound_labels is not None:
        text = format_compound_file({name: prediction.compound_labels})
        atomic_write_text(out_dir / COMPOUND_DIR / f"{name}.csv", text)
    status = prediction.faces.has_face
    title = f"{name}: {int(status.sum())} of {len(status)} frames with a face"
    plot_timeline(
        out_dir / f"{name}.png",
        prediction.faces.time_s,
        prediction.probabilities,
        status,
        title,
        va=prediction.va,
        aus=prediction.aus,
    )
    prediction.seconds["write"] = time.perf_counter() - start


def write_compound_submission(out_dir: Path) -> tuple[Path, int] | None:
    """``out_dir/compound.csv``: every ``compound/<video>.csv`` of the folder in one file, as
    C-EXPR-DB takes it (so a resumed or sharded run's videos are all in it); the path and the
    number of videos, or None where there is no such file."""
    parts = sorted((Path(out_dir) / COMPOUND_DIR).glob("*.csv"))
    if not parts:
        return None
    rows = {}
    for part in parts:
        rows.update(read_compound_file(part))
    lines = [COMPOUND_HEADER]
    for video in sorted(rows):
        lines += [f"{video}/{f:05d}.jpg,{c}" for f, (c, _) in sorted(rows[video].items())]
    path = Path(out_dir) / "compound.csv"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path, len(rows)


def _hex_to_bgr(colour: str) -> tuple[int, int, int]:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def frame_caption(prediction: VideoPrediction, i: int) -> tuple[list[str], str]:
    """What the annotated video writes by frame ``i``'s face, one line per track, and its
    colour (hex): the expression and its probability, valence and arousal, the AUs on."""
    parts, colour = [], "#f2f2f2"
    if prediction.labels is not None:
        label = int(prediction.labels[i])
        parts.append(f"{CLASS_NAMES[label]} {prediction.probabilities[i, label]:.2f}")
        colour = CLASS_COLOURS[label]
    if prediction.va is not None:
        valence, arousal = prediction.va[i]
        parts.append(f"V {valence:+.2f} A {arousal:+.2f}")
    if prediction.aus is not None:
        on = [name for name, a in zip(AU_NAMES, prediction.aus[i], strict=True) if a]
        parts.append(" ".join(on) if on else "no AU")
    return parts, colour


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.65, 4)[0][0]


def _caption(image: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    """Text with a dark outline, readable on any background."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, text, origin, font, 0.65, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, 0.65, colour, 2, cv2.LINE_AA)


def person_colour(k: int) -> str:
    """Person k's colour (hex): their box on ``serve``'s page and in the annotated video, and the
    title of their timelines."""
    return PERSON_COLOURS[k % len(PERSON_COLOURS)]


def _draw_person(
    bgr: np.ndarray, prediction: VideoPrediction, i: int, colour_hex: str | None, label: str
) -> None:
    """One person's box and captions in frame ``i`` (a face there): ``colour_hex`` the box's
    colour (None: the expression's), ``label`` written before the first caption."""
    height, width = bgr.shape[:2]
    (text, *more), expression_colour = frame_caption(prediction, i)
    colour = _hex_to_bgr(colour_hex or expression_colour)
    x0, y0, x1, y1 = (int(round(v)) for v in prediction.faces.boxes[i])
    cv2.rectangle(bgr, (x0, y0), (x1, y1), colour, 2)
    _caption(bgr, label + text, (x0, max(y0 - 8, 18)), colour)
    # the other tracks under the box, the lowest line inside the frame
    top = min(y1 + 22, height - 6 - 22 * (len(more) - 1))
    for k, line in enumerate(more):
        x = max(min(x0, width - _text_width(line) - 2), 2)
        _caption(bgr, line, (x, top + 22 * k), colour)


def _draw_frame(bgr: np.ndarray, predictions: list[VideoPrediction], i: int, stem: str) -> None:
    """Every person's box in frame ``i``, as ``serve``'s page draws them: one person in the
    expression's colour; several, each in their own colour, named (``left: Happiness 0.83``)."""
    several = len(predictions) > 1
    shown = 0
    for k, prediction in enumerate(predictions):
        if i >= prediction.faces.num_frames or not prediction.faces.has_face[i]:
            continue
        shown += 1
        name = prediction.name.removeprefix(f"{stem}_")
        if several:
            _draw_person(bgr, prediction, i, person_colour(k), f"{name}: ")
        else:
            _draw_person(bgr, prediction, i, None, "")
    if shown:
        return
    if several:
        _caption(bgr, "no face", (10, 26), (220, 220, 220))
        return
    (text, *more), _ = frame_caption(predictions[0], i)
    _caption(bgr, f"no face ({text})", (10, 26), (220, 220, 220))
    for k, line in enumerate(more, start=1):
        _caption(bgr, line, (10, 26 + 24 * k), (220, 220, 220))


def write_annotated_video(
    predictions: list[VideoPrediction], video: Path, path: Path, max_width: int = 0
) -> None:
    """A copy of ``video`` with every person's box and predictions drawn on (a second decode):
    one file per video, whatever the number of people (see :func:`_draw_frame`).

    ``.mp4`` is written as MPEG-4 Part 2, ``.webm`` as VP8 (what browsers play);
    ``max_width`` scales wider videos down."""
    fourcc = "VP80" if path.suffix.lower() == ".webm" else "mp4v"
    frames = max(p.faces.num_frames for p in predictions)
    fps = predictions[0].faces.info.fps or 25.0

    def write(tmp: Path) -> None:
        writer = None
        try:
            for frame in read_frames(video):
                i = frame.number - 1
                if i >= frames:
                    break
                bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
                if writer is None:
                    height, width = bgr.shape[:2]
                    size = (width, height)
                    if max_width and width > max_width:
                        size = (max_width, round(height * max_width / width / 2) * 2)
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {fourcc} video to {tmp}")
                _draw_frame(bgr, predictions, i, video.stem)
                if size != (width, height):
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                writer.write(bgr)
        finally:
            if writer is not None:
                writer.release()

    atomic_write(path, write, suffix=f".tmp{path.suffix}")


def annotated_video_path(out_dir: Path, video: Path) -> Path:
    """``<video>.annotated.mp4``: one per input video."""
    return out_dir / f"{video.stem}.annotated.mp4"


def frame_ranges(mask: np.ndarray) -> list[list[int]]:
    """The runs of True in ``mask`` as ``[first, last]`` 1-based frame numbers."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [[int(a) + 1, int(b)] for a, b in zip(starts, ends, strict=True)]


def write_record(
    predictions: list[VideoPrediction],
    video: Path,
    out_dir: Path,
    options: FaceOptions,
    model: dict | None = None,
) -> None:
    """``<video>.json``: the video's people (their output names and face frames), last;
    ``model``: what it says of the model (``model`` and ``model_warning``, see
    :func:`~abaw_expr.inference.provenance.model_fields`)."""
    faces = predictions[0].faces
    record = {
        "video": video.stem,
        "source": str(video),
        "frames": faces.num_frames,
        "fps": faces.info.fps,
        "shot_cuts": faces.cuts,  # 1-based frames that begin a new shot (faces="all")
        "people": [
            {
                "name": p.name,
                "track": p.faces.track,
                "face_frames": int(p.faces.has_face.sum()),
                "frames": frame_ranges(p.faces.has_face),
                "tracks": p.faces.tracks,  # the tracker's pieces: how each was joined, or why not
            }
            for p in predictions
        ],
        "options": asdict(options),
        **(model or {}),
        **source_stamp(video),
    }
    atomic_write_json(record_path(out_dir, video.stem), record)
