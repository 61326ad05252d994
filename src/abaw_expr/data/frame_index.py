"""Which frames each video has: its labels, which frames have a face image, where they are.

One :class:`VideoFrames` per video, built by listing each image folder once (no per-frame
``os.path.exists``), and cached as a single ``.npz`` so that a 2.6 M-frame index loads in
well under a second. The cache is keyed by the data roots and the modification times of every
label file and image folder, so an edited data set is re-indexed rather than read stale.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abaw_expr.data.annotations import list_label_files, read_labels
from abaw_expr.errors import InputError, require_dir, require_file
from abaw_expr.tasks import NUM_CLASSES, TASKS, UNANNOTATED
from abaw_expr.writers import atomic_write

log = logging.getLogger(__name__)

IMAGE_SUFFIX = ".jpg"
CACHE_VERSION = 1


def check_video_name(name: str, source: Path | str) -> str:
    """Refuse video names that could escape the data root (``../x``, ``a/b``, absolute)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"unsafe or empty video name {name!r}", source)
    return name


def image_path(image_dir: Path, frame: int) -> Path:
    """Path of 0-based ``frame`` in a ``cropped_aligned/<video>`` folder (names are 1-based)."""
    return image_dir / f"{frame + 1:05d}{IMAGE_SUFFIX}"


def list_image_frames(image_dir: Path) -> np.ndarray:
    """0-based frame numbers of the ``NNNNN.jpg`` images in one folder (sorted)."""
    try:
        names = os.listdir(image_dir)
    except (FileNotFoundError, NotADirectoryError):
        return np.zeros(0, dtype=np.int64)
    frames = [
        int(n[:-4]) - 1
        for n in names
        if n.endswith(IMAGE_SUFFIX) and n[:-4].isdigit() and int(n[:-4]) > 0
    ]
    return np.array(sorted(frames), dtype=np.int64)


@dataclass
class VideoFrames:
    """Frame-level facts of one video. Arrays are indexed by 0-based frame number."""

    name: str
    image_dir: Path
    labels: np.ndarray  # int8, -1 = unannotated (all -1 for a test video)
    has_image: np.ndarray  # bool
    split: str = ""
    # Other ABAW tracks, where chosen (data/task_index.py): (frames, 2) float32 valence and
    # arousal with -5 where not annotated; (frames, 12) int8 action units, rows of -1.
    va: np.ndarray | None = None
    au: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return len(self.labels)

    def annotated_for(self, task: str) -> np.ndarray:
        """Frames annotated for one track (none for a track this index does not hold)."""
        if task == "expr":
            return self.labels >= 0
        values = self.va if task == "va" else self.au
        if values is None:
            return np.zeros(self.num_frames, dtype=bool)
        return TASKS[task].annotated(values)

    @property
    def annotated(self) -> np.ndarray:
        """Frames annotated for any track this index holds."""
        if self.va is None and self.au is None:
            return self.labels >= 0
        return self.annotated_for("expr") | self.annotated_for("va") | self.annotated_for("au")

    @property
    def usable(self) -> np.ndarray:
        """Annotated frames that have a face image: what training sees."""
        return self.annotated & self.has_image

    def path(self, frame: int) -> Path:
        return image_path(self.image_dir, frame)


def video_from_folder(
    name: str, image_dir: Path, labels: np.ndarray, split: str = ""
) -> VideoFrames:
    """Combine a label array with the images found in ``image_dir``.

    The annotation decides the frame count: images past its end are ignored, frames without an
    image are frames where no face was found.
    """
    frames = list_image_frames(image_dir)
    has_image = np.zeros(len(labels), dtype=bool)
    has_image[frames[frames < len(labels)]] = True
    return VideoFrames(name, image_dir, labels, has_image, split)


@dataclass
class FrameIndex:
    """All videos of one split (or a test list)."""

    videos: list[VideoFrames] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self):
        return iter(self.videos)

    @property
    def num_frames(self) -> int:
        return sum(v.num_frames for v in self.videos)

    def stats(self) -> dict:
        """Counts of one split: videos, frames, annotated, usable, usable frames per class."""
        from abaw_expr.tasks import CLASS_NAMES

        per_class = np.zeros(NUM_CLASSES, dtype=np.int64)
        annotated = usable = 0
        for v in self.videos:
            annotated += int(v.annotated.sum())
            usable += int(v.usable.sum())
            expression = v.labels[v.usable & (v.labels >= 0)]  # usable for another track: -1
            per_class += np.bincount(expression.astype(np.int64), minlength=NUM_CLASSES)
        return {
            "videos": len(self.videos),
            "frames": self.num_frames,
            "annotated": annotated,
            "usable": usable,
            "per_class": {n: int(c) for n, c in zip(CLASS_NAMES, per_class, strict=True)},
        }


def _cache_key(images_dir: Path, label_files: list[Path]) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{images_dir.resolve()}".encode())
    for f in label_files:
        image_dir = images_dir / f.stem
        try:
            image_mtime = image_dir.stat().st_mtime_ns
        except FileNotFoundError:
            image_mtime = -1
        st = f.stat()
        digest.update(f"|{f.resolve()}|{st.st_mtime_ns}|{st.st_size}|{image_mtime}".encode())
    return digest.hexdigest()[:20]


def default_cache_dir() -> Path:
    return Path(os.environ.get("ABAW_EXPR_CACHE", Path.home() / ".cache" / "abaw-expr"))


def _save_index(path: Path, index: FrameIndex, images_dir: Path) -> None:
    lengths = np.array([v.num_frames for v in index], dtype=np.int64)
    payload = {
        "names": np.array([v.name for v in index], dtype=str),
        "splits": np.array([v.split for v in index], dtype=str),
        "lengths": lengths,
        "labels": np.concatenate([v.labels for v in index])
        if index.videos
        else np.zeros(0, np.int8),
        "has_image": np.concatenate([v.has_image for v in index])
        if index.videos
        else np.zeros(0, bool),
        "images_dir": np.array(str(images_dir)),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **payload)

    atomic_write(path, write)


def _load_index(path: Path, images_dir: Path) -> FrameIndex:
    with np.load(path, allow_pickle=False) as data:
        offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
        labels, has_image = data["labels"], data["has_image"]
        return FrameIndex(
            [
                VideoFrames(
                    str(name),
                    images_dir / str(name),
                    labels[a:b].copy(),
                    has_image[a:b].copy(),
                    str(split),
                )
                for name, split, a, b in zip(
                    data["names"], data["splits"], offsets[:-1], offsets[1:], strict=True
                )
            ]
        )


def build_split_index(
    images_dir: Path | str,
    split_dir: Path | str,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
) -> FrameIndex:
    """Index one annotated split: ``split_dir/<video>.txt`` against ``images_dir/<video>/``.

    A label file whose video has no image folder is indexed with no images and logged as a
    warning (every frame of it is a frame without a face).
    """
    images_dir = require_dir(images_dir, "the cropped_aligned folder")
    split_dir = Path(split_dir)
    label_files = list_label_files(split_dir)
    cache_file = None
    if use_cache:
        cache_file = (
            Path(cache_dir or default_cache_dir())
            / f"frame_index-{_cache_key(images_dir, label_files)}.npz"
        )
        if cache_file.is_file():
            try:
                return _load_index(cache_file, images_dir)
            except (OSError, ValueError, KeyError) as err:
                log.warning("ignoring unreadable frame-index cache %s (%s)", cache_file, err)
    videos = []
    for f in label_files:
        name = check_video_name(f.stem, f)
        image_dir = images_dir / name
        if not image_dir.is_dir():
            log.warning(
                "%s: no image folder %s; all its frames count as frames without a face",
                f,
                image_dir,
            )
        videos.append(video_from_folder(name, image_dir, read_labels(f), split_dir.name))
    index = FrameIndex(videos)
    if cache_file is not None:
        try:
            _save_index(cache_file, index, images_dir)
        except OSError as err:
            log.warning("could not write frame-index cache %s (%s)", cache_file, err)
    return index


def read_video_list(list_file: Path | str) -> list[tuple[str, int | None]]:
    """Read a test-set list: one video per line, ``name`` or ``name,frame_count``.

    ABAW releases the test set as a text file of video names; the frame count of each video
    (needed to write a prediction for every frame) comes from the source videos, so a
    ``name,frame_count`` form is accepted too. Blank lines and ``#`` comments are skipped; a
    header line ``video,frames`` is allowed.
    """
    list_file = require_file(list_file, "a list file")
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", list_file) from None
    entries: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    first = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        is_header = first and parts[0].lower() in ("video", "name")
        first = False
        if is_header:
            continue
        name = parts[0].removesuffix(".mp4").removesuffix(".avi")
        try:
            check_video_name(name, list_file)
        except InputError:
            raise InputError(f"unsafe or empty video name {name!r}", list_file, lineno) from None
        count = None
        if len(parts) > 1 and parts[1]:
            if not parts[1].isdigit() or int(parts[1]) <= 0:
                raise InputError(
                    f"frame count {parts[1]!r} is not a positive integer", list_file, lineno
                )
            count = int(parts[1])
        if len(parts) > 2:
            raise InputError(
                f"expected 'name' or 'name,frame_count', got {line!r}", list_file, lineno
            )
        if name in seen:
            raise InputError(f"video {name!r} listed twice", list_file, lineno)
        seen.add(name)
        entries.append((name, count))
    if not entries:
        raise InputError("lists no videos", list_file)
    return entries


def build_test_index(images_dir: Path | str, list_file: Path | str) -> FrameIndex:
    """Index an unlabelled test set: every frame up to each video's frame count.

    Where the list gives no frame count, the highest image number is used and a warning says
    so: trailing frames without a face would then get no prediction.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError("no such folder", images_dir)
    videos = []
    for name, count in read_video_list(list_file):
        image_dir = images_dir / name
        frames = list_image_frames(image_dir)
        if count is None:
            if len(frames) == 0:
                raise InputError(
                    f"video {name!r} has no images and the list gives no frame count", list_file
                )
            count = int(frames[-1]) + 1
            log.warning(
                "%s: no frame count for %s; using its last image, frame %d", list_file, name, count
            )
        videos.append(
            video_from_folder(
                name, image_dir, np.full(count, UNANNOTATED, dtype=np.int8), "Test_Set"
            )
        )
    return FrameIndex(videos)
