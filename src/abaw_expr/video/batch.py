"""Many videos: a stable share of a folder for each task of an array job (``--shard K/N``), and
the record that marks a video finished, so that a rerun skips it.

Video ``v`` belongs to shard ``1 + (sha1(v's file name) mod N)``: the share depends on the name
alone, not on the listing order, the machine or the other files in the folder, so the N tasks
of an array job (each listing the folder on its own node) cover every video exactly once, and
a video added later falls into one shard without moving the others. With thousands of videos
the shards are even to within a few per cent; with a handful, some may be empty.

Which videos are refused because another one may write their outputs (``a_left.mp4`` beside
``a.mp4``, see :func:`name_clashes`) is decided from the names of the whole folder too, never
from one shard's or one run's videos: the two may land in different shards, or in different
reruns, and every task must refuse the same one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from abaw_expr.data.frame_index import check_video_name
from abaw_expr.errors import InputError
from abaw_expr.video.reader import list_videos

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (1 <= K <= N) as ``(K, N)``; None stays None. Anything else is an
    :class:`InputError` saying what is expected."""
    if spec is None:
        return None
    match = _SPEC.match(spec)
    if match is None:
        raise InputError(f"--shard takes K/N, for example 3/10 (got {spec!r})")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise InputError(f"--shard K/N needs 1 <= K <= N (got {spec!r})")
    return k, n


def shard_index(video: Path, count: int) -> int:
    """The 1-based shard of ``video`` among ``count``."""
    digest = hashlib.sha1(video.name.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def select_shard(videos: list[Path], shard: tuple[int, int] | None) -> list[Path]:
    """The videos of shard ``(K, N)``, in their order; all of them when ``shard`` is None."""
    if shard is None:
        return list(videos)
    k, n = shard
    return [v for v in videos if shard_index(v, n) == k]


PEOPLE = ("_left", "_right")  # the outputs of a video with two people: <video>_left, _right


def name_clashes(videos: list[Path], faces: str = "all") -> dict[Path, str]:
    """The videos of a folder whose outputs another video of it may write, each with the reason.

    With ``faces="all"`` a video ``a`` that shows two people writes ``a_left.*`` and
    ``a_right.*`` (Aff-Wild2's names), so ``a_left.mp4`` beside ``a.mp4`` is refused; ``a``
    itself is kept. It is refused whether ``a`` turns out to show one person or two: that is
    known only once ``a`` is processed, perhaps by another task. Pass the whole folder.
    (Two videos with the same name, ``a.mp4`` and ``a.avi``, are refused by ``list_videos``.)
    """
    if faces != "all":
        return {}
    by_name = {v.stem: v for v in videos}
    refused = {}
    for video in videos:
        for suffix in PEOPLE:
            base = by_name.get(video.stem.removesuffix(suffix))
            if base is not None and base != video:
                refused[video] = (
                    f"its outputs {video.stem}.* would replace those of {base.name} (its "
                    f"{suffix[1:]} person, when it shows two); rename one of the two videos"
                )
    return refused


def source_stamp(video: Path) -> dict:
    """What identifies a video's content cheaply: its size and modification time."""
    stat = video.stat()
    return {"source_bytes": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def finished(record_path: Path, video: Path) -> bool:
    """Whether ``record_path`` (a JSON record written last, atomically, when a video's outputs
    were complete) exists and was made from this very file (same size and time)."""
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(
        record.get(k) == v for k, v in source_stamp(video).items()
    )


def record_path(out_dir: Path, name: str) -> Path:
    """``<video>.json``: written last, when every output of a predicted video is in place."""
    return Path(out_dir) / f"{name}.json"


def pending_videos(
    source: Path | str,
    out_dir: Path | str,
    shard: tuple[int, int] | None = None,
    overwrite: bool = False,
    faces: str = "all",
) -> tuple[list[Path], list[str], dict[str, str]]:
    """The videos of ``source`` (its shard ``(K, N)``) that ``predict --video`` still has to
    do, the names of those an earlier run finished (skipped unless ``overwrite``), and those of
    the shard refused by :func:`name_clashes` (video file -> one-line error)."""
    listing = list_videos(source)
    clashes = name_clashes(listing, faces)  # the whole folder's names, whatever the shard
    videos, skipped, refused = [], [], {}
    for video in select_shard(listing, shard):
        check_video_name(video.stem, video)
        if video in clashes:
            refused[str(video)] = str(InputError(clashes[video], video))
        elif not overwrite and finished(record_path(Path(out_dir), video.stem), video):
            skipped.append(video.stem)
        else:
            videos.append(video)
    return videos, skipped, refused
