"""Raw videos to the ABAW layout: ``OUT/cropped_aligned/<video>/00001.jpg ...`` numbered by
video frame (1-based), frames without the subject's face left missing, exactly as Aff-Wild2's
training data look; plus ``OUT/faces/<video>.json`` (frame count, fps, every frame's boxes).
With ``faces="all"`` each person is a folder and a record of their own, named as Aff-Wild2
names them (``<video>_left`` / ``<video>_right``, see :mod:`.tracks`), and ``<video>.json``
lists them.

A video is written into a hidden folder and renamed into place when it is complete, and its
JSON is written last: a killed run leaves no half video, and a rerun skips the videos whose
JSON matches their file (size and modification time) and redoes the rest.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.data.frame_index import check_video_name
from abaw_expr.errors import InputError
from abaw_expr.video.batch import finished, name_clashes, select_shard, source_stamp
from abaw_expr.video.reader import list_videos
from abaw_expr.video.tracks import FaceOptions, track_people, track_video
from abaw_expr.writers import atomic_write_json

log = logging.getLogger(__name__)

JPEG_QUALITY = 95


@dataclass
class PreprocessResult:
    done: list[str]  # videos written by this run
    skipped: list[str]  # videos already complete from an earlier run
    failed: dict[str, str]  # video file -> one-line error


def _write_jpeg(path: Path, crop: np.ndarray) -> None:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def preprocess_video(video: Path, out: Path, options: FaceOptions, progress: bool = False) -> dict:
    """Crops and face records of one video; returns the video's record."""
    name = check_video_name(video.stem, video)
    partial = out / "cropped_aligned" / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if options.faces == "all":

            def write_crop(track: int, number: int, crop: np.ndarray) -> None:
                folder = partial / "pieces" / str(track)
                folder.mkdir(parents=True, exist_ok=True)
                _write_jpeg(folder / f"{number:05d}.jpg", crop)

            people = track_people(video, options, write_crop, progress)
        else:

            def write_subject(number: int, crop: np.ndarray) -> None:
                (partial / "pieces" / "0").mkdir(parents=True, exist_ok=True)
                _write_jpeg(partial / "pieces" / "0" / f"{number:05d}.jpg", crop)

            people = [(track_video(video, options, write_subject, progress), [0])]
        # Each person's pieces into one folder, still hidden; then all of them into place.
        for faces, tracks in people:
            folder = partial / "people" / faces.name
            folder.mkdir(parents=True)
            for track in tracks:  # a track cut in two serves two people: their own frames
                for jpeg in (partial / "pieces" / str(track)).glob("*.jpg"):
                    if faces.has_face[int(jpeg.stem) - 1]:
                        jpeg.rename(folder / jpeg.name)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if not any(faces.has_face.any() for faces, _ in people):
        log.warning("%s: no face found in any of its %d frames", video, people[0][0].num_frames)
    records = []
    for faces, _ in people:
        final = out / "cropped_aligned" / faces.name
        shutil.rmtree(final, ignore_errors=True)
        (partial / "people" / faces.name).rename(final)
        record = faces.summary(options)
        record.update(source_stamp(video), options=asdict(options))
        records.append(record)
    shutil.rmtree(partial, ignore_errors=True)
    names = [faces.name for faces, _ in people]
    for record in records:
        if record["video"] != name:
            atomic_write_json(out / "faces" / f"{record['video']}.json", record)
    # The video's own record last: it marks the video done.
    if names == [name]:
        video_record = records[0]
    else:
        video_record = {
            k: records[0][k] for k in ("source", "width", "height", "fps", "frames")
        } | {"video": name, "options": asdict(options), **source_stamp(video)}
    video_record["people"] = names
    atomic_write_json(out / "faces" / f"{name}.json", video_record)
    return video_record


def _people_done(out: Path, video: Path) -> bool:
    record_path = out / "faces" / f"{video.stem}.json"
    if not finished(record_path, video):
        return False
    people = json.loads(record_path.read_text()).get("people", [video.stem])
    return all((out / "cropped_aligned" / person).is_dir() for person in people)


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
    listing = list_videos(source)
    clashes = name_clashes(listing, options.faces)  # the whole folder's names, whatever the shard
    for video in select_shard(listing, shard):
        if video in clashes:
            err = InputError(clashes[video], video)
            log.error("%s", err)
            result.failed[str(video)] = str(err)
            continue
        if _people_done(out, video):
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
