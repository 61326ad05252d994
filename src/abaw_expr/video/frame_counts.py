"""``abaw-expr test-list``: a test set's ``name,frame_count`` list, from its source videos.

ABAW releases a test set as video names; a prediction is due for every frame, and how many
frames a video has only its file tells. Frames are counted by decoding every one with OpenCV
(``grab``: decoded, not converted to pixels), the decoder and numbering of ``preprocess`` and
``predict --video``, so the list agrees with the ``cropped_aligned`` frames they write. The
count a container declares is not used: it is missing from some containers, estimated from the
duration in others, and wrong in a file cut short or with a variable frame rate
(:mod:`.reader`); where it differs from the decoded count a warning says so.

Two people in one source video are ``<name>_left`` and ``<name>_right`` in ABAW's lists. With
a list of the names wanted (``--names``, ABAW's own list), each listed name gets its video's
count, ``<name>_left`` and ``<name>_right`` both that of ``<name>``'s video; without one, every
video of the folder gets one line under its own name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from abaw_expr.data.frame_index import read_video_list
from abaw_expr.errors import InputError
from abaw_expr.video.reader import list_videos, open_video
from abaw_expr.writers import atomic_write_text

log = logging.getLogger(__name__)

SIDES = ("_left", "_right")


def count_frames(path: Path | str) -> int:
    """How many frames of the video decode (an :class:`InputError` naming it if none does)."""
    capture, info = open_video(path)
    try:
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise InputError("no decodable frame (empty, corrupt or not a video)", info.path)
    if info.declared_frames and info.declared_frames != count:
        log.warning(
            "%s: the container declares %d frames, %d decode; %d written",
            info.path,
            info.declared_frames,
            count,
            count,
        )
    return count


def _source_of(name: str, videos: dict[str, Path]) -> Path | None:
    """The video a listed name is counted from: its own, else ``<name>`` for ``<name>_left``."""
    if name in videos:
        return videos[name]
    for side in SIDES:
        if name.endswith(side) and name.removesuffix(side) in videos:
            return videos[name.removesuffix(side)]
    return None


def _line_of(names_file: Path, name: str) -> int | None:
    for number, raw in enumerate(names_file.read_text(encoding="utf-8-sig").splitlines(), 1):
        if raw.split(",")[0].strip().removesuffix(".mp4").removesuffix(".avi") == name:
            return number
    return None


def write_test_list(
    videos_dir: Path | str, out: Path | str, names: Path | str | None = None
) -> dict:
    """Write ``out``: one ``name,frame_count`` line per video of ``videos_dir`` or, with
    ``names``, per name listed there (see the module's text). Returns name -> count."""
    videos = {v.stem: v for v in list_videos(videos_dir)}
    for stem, video in videos.items():
        if "," in stem:
            raise InputError("a comma in a video's name cannot go into a name,count list", video)
    if names is None:
        wanted = dict(videos)
    else:
        wanted = {}
        for name, _ in read_video_list(names):
            source = _source_of(name, videos)
            if source is None:
                raise InputError(
                    f"no video for {name!r} in {videos_dir} (nor for it without _left/_right)",
                    names,
                    _line_of(Path(names), name),
                )
            wanted[name] = source
    counted: dict[Path, int] = {}
    counts = {}
    for name, video in wanted.items():
        if video not in counted:
            counted[video] = count_frames(video)
        counts[name] = counted[video]
    atomic_write_text(out, "".join(f"{name},{n}\n" for name, n in counts.items()))
    return counts
