"""Streamed decoding with OpenCV: one frame at a time, never the whole video in memory.

The frame count and rate a container declares are only hints: frames are counted as they are
decoded, and each frame's time comes from its own timestamp, so variable-frame-rate videos and
containers that lie about their length are handled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from abaw_expr.errors import InputError, require_dir, require_file

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float  # as the container declares it (0 if it does not)
    declared_frames: int  # as the container declares it; may be wrong

    @property
    def name(self) -> str:
        return self.path.stem


def list_videos(path: Path | str) -> list[Path]:
    """A video file, or the video files (by suffix) directly inside a folder, sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    require_dir(path, "a video file or a folder of videos", missing="no such video file or folder")
    videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder", path)
    stems: dict[str, Path] = {}
    for video in videos:
        if video.stem in stems:
            raise InputError(
                f"two videos would write the same outputs: {stems[video.stem].name} and {video.name}",
                path,
            )
        stems[video.stem] = video
    return videos


def open_video(path: Path | str) -> tuple[cv2.VideoCapture, VideoInfo]:
    path = require_file(path, "a video file", missing="no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError("not a readable video (OpenCV cannot open it)", path)
    info = VideoInfo(
        path=path,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        declared_frames=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
    )
    return capture, info


def probe_video(path: Path | str) -> VideoInfo:
    capture, info = open_video(path)
    capture.release()
    return info


@dataclass(frozen=True)
class Frame:
    number: int  # 1-based, as the ABAW frame files are numbered
    time_s: float
    rgb: np.ndarray  # (H, W, 3) uint8


def read_frames(path: Path | str) -> Iterator[Frame]:
    """Every decodable frame of a video, in order, as RGB.

    Raises InputError if the file holds no decodable frame at all. A stream that breaks off
    midway ends the iteration with a warning, keeping what was decoded.
    """
    capture, info = open_video(path)
    try:
        number = 0
        fallback_step = 1.0 / info.fps if info.fps > 0 else 0.0
        while True:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            number += 1
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC)
            time_s = stamp / 1000.0 if stamp > 0 or number == 1 else (number - 1) * fallback_step
            yield Frame(number, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if number == 0:
            raise InputError("no decodable frame (empty, corrupt or not a video)", info.path)
        if info.declared_frames and number < info.declared_frames * 0.98 - 1:
            log.warning(
                "%s: the container declares %d frames, %d were decodable",
                info.path,
                info.declared_frames,
                number,
            )
    finally:
        capture.release()
