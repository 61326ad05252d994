"""How a checkpoint is run to predict frames: the settings that travel together from the
command line (or a caller) to the model, whichever way the frames come.

:class:`InferenceSettings` is what every predicting path reads: ``evaluate`` and ``predict
--images`` (:mod:`abaw_expr.evaluation.evaluate`), ``predict --video``
(:mod:`abaw_expr.video.predict`) and ``serve`` (:mod:`abaw_expr.serve.jobs`). A path reads
only what concerns it: ``num_workers`` (image-decoding processes) is read from images alone,
as video frames are decoded by the face pass.

:class:`VideoSettings` is what a run over video *files* decides beside the model: which videos
(``shard``, ``overwrite``), what it writes beyond the per-frame outputs (``annotated_video``)
and whether it shows progress. It is a class of its own, not fields of
:class:`InferenceSettings`, because the other paths have none of it (``serve`` runs one
uploaded video, with no shards and no annotated copy), and not fields of
:class:`~abaw_expr.video.tracks.FaceOptions`, because those say how faces are found and are
written into every ``<video>.json`` record as they are.

Both are plain data, frozen (:func:`dataclasses.replace` gives a changed copy), and import
nothing heavy, so a command can build them before PyTorch loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceSettings:
    """How the model runs on a job's frames.

    ``stride``: the step between windows (None: the checkpoint's ``data.eval_stride``);
    ``smooth``: a moving average of the per-frame values over this many frames (0: none);
    ``device``: ``auto`` (CUDA where there is one), ``cpu``, ``cuda``, ``cuda:1``, ...;
    ``batch_size``: crops per backbone batch; ``num_workers``: image-decoding processes
    (images only); ``engine``: the backbone's engine on a CPU (see
    :class:`~abaw_expr.inference.engine.BackboneRunner`; ``int8:DIR`` calibrates on DIR).
    """

    stride: int | None = None
    smooth: int = 0
    device: str = "auto"
    batch_size: int = 64
    num_workers: int = 2
    engine: str = "auto"


@dataclass(frozen=True)
class VideoSettings:
    """What a run over video files does beside the model (see the module's text).

    ``annotated_video``: also write ``<video>.annotated.mp4``; ``progress``: a progress bar per
    video; ``shard``: only shard ``(K, N)`` of a folder's videos; ``overwrite``: redo videos an
    earlier run finished; ``compound``: also the compound-expression columns and files
    (:mod:`abaw_expr.inference.compound`).
    """

    annotated_video: bool = False
    progress: bool = True
    shard: tuple[int, int] | None = None
    overwrite: bool = False
    compound: bool = False
