"""Raw videos to the ABAW layout: ``OUT/cropped_aligned/<video>/00001.jpg ...`` numbered by
video frame (1-based), frames without the subject's face left missing, exactly as Aff-Wild2's
training data look; plus ``OUT/faces/<video>.json`` (frame count, fps, every frame's boxes).

A video is written into a hidden folder and renamed into place when it is complete, and its
JSON is written last: a killed run leaves no half video, and a rerun skips the videos whose
JSON matches their file (size and modification time) and redoes the rest.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.frame_index import check_video_name
from ..errors import InputError
from ..writers import atomic_write_json
from .batch import finished, select_shard, source_stamp
from .reader import list_videos
from .tracks import FaceOptions, track_video

log = logging.getLogger(__name__)

JPEG_QUALITY = 95


@dataclass
class PreprocessResult:
    done: list[str]  # videos written by this run
    skipped: list[str]  # videos already complete from an earlier run
    failed: dict[str, str]  # video file -> one-line error


def preprocess_video(video: Path, out: Path, options: FaceOptions, progress: bool = False) -> dict:
    """Crops and face record of one video; returns the record."""
    name = check_video_name(video.stem, video)
    final = out / "cropped_aligned" / name
    partial = out / "cropped_aligned" / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)

    def write_crop(number: int, crop: np.ndarray) -> None:
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:
            raise OSError(f"cannot encode frame {number} of {video}")
        (partial / f"{number:05d}.jpg").write_bytes(data.tobytes())

    try:
        faces = track_video(video, options, write_crop, progress)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    record = faces.summary(options)
    record.update(source_stamp(video), options=asdict(options))
    if not faces.has_face.any():
        log.warning("%s: no face found in any of its %d frames", video, faces.num_frames)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    atomic_write_json(out / "faces" / f"{name}.json", record)
    return record


def preprocess_videos(
    source: Path | str,
    out: Path | str,
    options: FaceOptions | None = None,
    progress: bool = False,
    shard: tuple[int, int] | None = None,
) -> PreprocessResult:
    """Every video of ``source`` (a file or a folder), or shard ``(K, N)`` of them (see
    :mod:`.batch`); a video that fails is reported and the others still processed."""
    options = options or FaceOptions()
    out = Path(out)
    result = PreprocessResult([], [], {})
    for video in select_shard(list_videos(source), shard):
        record_path = out / "faces" / f"{video.stem}.json"
        if (out / "cropped_aligned" / video.stem).is_dir() and finished(record_path, video):
            result.skipped.append(video.stem)
            continue
        try:
            preprocess_video(video, out, options, progress)
        except InputError as err:
            log.error("%s", err)
            result.failed[str(video)] = str(err)
            continue
        result.done.append(video.stem)
    return result
