"""Frame index: labels against the images found, the .npz cache, test-set lists."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from abaw_expr.data import frame_index as fi
from abaw_expr.data.frame_index import (
    build_split_index,
    build_test_index,
    check_video_name,
    list_image_frames,
    read_video_list,
)
from abaw_expr.errors import InputError
from abaw_expr.tasks import CLASS_NAMES, HEADER, NUM_CLASSES


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test gets its own cache folder: nothing is written to ~/.cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ABAW_EXPR_CACHE", str(folder))
    return folder


def write_label_file(path, labels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "".join(f"{int(x)}\n" for x in labels), encoding="utf-8")


def write_images(folder, frames_1based) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in frames_1based:
        (folder / f"{f:05d}.jpg").write_bytes(b"\xff\xd8\xff\xd9")


class Tree:
    """A small Aff-Wild2-like tree; ``videos`` maps name -> (labels, 1-based image numbers)."""

    def __init__(self, root, videos: dict, split: str = "Train_Set"):
        self.images = root / "cropped_aligned"
        self.split_dir = root / "annotations" / split
        self.images.mkdir(parents=True, exist_ok=True)
        self.videos = videos
        for name, (labels, images) in videos.items():
            write_label_file(self.split_dir / f"{name}.txt", labels)
            if images is not None:
                write_images(self.images / name, images)


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1, NUM_CLASSES, size=n).astype(np.int8)


@pytest.fixture
def tree(tmp_path):
    videos = {
        # a missing image in the middle (frames 4 and 7, 1-based)
        "10-60-1280x720": (_labels(10, 1), [1, 2, 3, 5, 6, 8, 9, 10]),
        # images beyond the annotation's length (11..15) are ignored
        "21-24-1920x1080": (_labels(10, 2), list(range(1, 16))),
        # annotation longer than the images
        "30-30-1920x1080_left": (_labels(12, 3), [1, 2, 3, 4, 5]),
        "30-30-1920x1080_right": (_labels(7, 4), [2, 3, 4, 5, 6, 7]),
        # no image folder at all
        "99-noimages": (_labels(6, 5), None),
    }
    return Tree(tmp_path, videos)


def _expected_has_image(labels, images) -> np.ndarray:
    has = np.zeros(len(labels), dtype=bool)
    for f in images or []:
        if f <= len(labels):
            has[f - 1] = True
    return has


def test_index_labels_and_images(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="abaw_expr.data.frame_index"):
        index = build_split_index(tree.images, tree.split_dir)
    assert [v.name for v in index] == sorted(tree.videos)
    assert len(index) == len(tree.videos)
    for video in index:
        labels, images = tree.videos[video.name]
        assert video.split == "Train_Set"
        assert video.num_frames == len(labels)
        assert video.labels.dtype == np.int8
        np.testing.assert_array_equal(video.labels, labels)
        np.testing.assert_array_equal(video.has_image, _expected_has_image(labels, images))
        np.testing.assert_array_equal(video.usable, (labels >= 0) & video.has_image)
        assert video.image_dir == tree.images / video.name
    assert index.num_frames == sum(len(lab) for lab, _ in tree.videos.values())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("99-noimages" in m and "no image folder" in m for m in warnings)
    assert not any("10-60" in m for m in warnings)


def test_specific_frames(tree):
    index = {v.name: v for v in build_split_index(tree.images, tree.split_dir)}
    middle = index["10-60-1280x720"]
    assert middle.has_image.tolist() == [True] * 3 + [False] + [True] * 2 + [False] + [True] * 3
    assert index["21-24-1920x1080"].has_image.all()
    assert len(index["21-24-1920x1080"].has_image) == 10
    longer = index["30-30-1920x1080_left"]
    assert longer.has_image.tolist() == [True] * 5 + [False] * 7
    right = index["30-30-1920x1080_right"]
    assert right.has_image.tolist() == [False] + [True] * 6
    none = index["99-noimages"]
    assert not none.has_image.any()
    assert not none.usable.any()


def test_left_right_are_separate_videos(tree):
    index = {v.name: v for v in build_split_index(tree.images, tree.split_dir)}
    left, right = index["30-30-1920x1080_left"], index["30-30-1920x1080_right"]
    assert left.num_frames == 12 and right.num_frames == 7
    assert left.image_dir.name == "30-30-1920x1080_left"
    assert right.image_dir.name == "30-30-1920x1080_right"
    assert "30-30-1920x1080" not in index


def test_paths_are_one_based(tree):
    index = {v.name: v for v in build_split_index(tree.images, tree.split_dir)}
    video = index["10-60-1280x720"]
    assert video.path(0) == tree.images / "10-60-1280x720" / "00001.jpg"
    assert video.path(9) == tree.images / "10-60-1280x720" / "00010.jpg"
    for frame in np.flatnonzero(video.has_image):
        assert video.path(frame).is_file()
    for frame in np.flatnonzero(~video.has_image):
        assert not video.path(frame).exists()


def test_stats_against_independent_counts(tree):
    stats = build_split_index(tree.images, tree.split_dir).stats()
    frames = annotated = usable = 0
    per_class = dict.fromkeys(CLASS_NAMES, 0)
    for labels, images in tree.videos.values():
        images = set(images or [])
        for i, label in enumerate(labels.tolist(), start=1):
            frames += 1
            if label >= 0:
                annotated += 1
                if i in images:
                    usable += 1
                    per_class[CLASS_NAMES[label]] += 1
    assert stats == {
        "videos": 5,
        "frames": frames,
        "annotated": annotated,
        "usable": usable,
        "per_class": per_class,
    }
    assert sum(stats["per_class"].values()) == usable


def test_list_image_frames_ignores_other_files(tmp_path):
    folder = tmp_path / "v"
    write_images(folder, [3, 1, 12])
    for name in ["00000.jpg", "thumbs.db", "00002.png", "abc.jpg", "00004.jpg.tmp"]:
        (folder / name).write_bytes(b"")
    (folder / "sub").mkdir()
    assert list_image_frames(folder).tolist() == [0, 2, 11]
    assert list_image_frames(tmp_path / "missing").tolist() == []


def test_image_folder_that_is_a_file(tmp_path):
    tree = Tree(tmp_path, {"v1": (np.zeros(4, np.int8), None)})
    (tree.images / "v1").write_bytes(b"not a folder")
    index = build_split_index(tree.images, tree.split_dir)
    assert not index.videos[0].has_image.any()


def test_missing_images_folder(tmp_path):
    tree = Tree(tmp_path, {"v1": (np.zeros(4, np.int8), [1])})
    with pytest.raises(InputError, match="no such folder") as info:
        build_split_index(tmp_path / "nope", tree.split_dir)
    assert "nope" in str(info.value)


def test_bad_label_file_is_reported(tmp_path):
    tree = Tree(tmp_path, {"v1": (np.zeros(4, np.int8), [1])})
    (tree.split_dir / "v2.txt").write_text(HEADER + "\n0\n9\n")
    with pytest.raises(InputError) as info:
        build_split_index(tree.images, tree.split_dir)
    assert f"{tree.split_dir / 'v2.txt'}:3:" in str(info.value)


# --- the cache ----------------------------------------------------------------------------


def _same(a, b) -> None:
    assert [v.name for v in a] == [v.name for v in b]
    for x, y in zip(a, b, strict=True):
        assert x.split == y.split
        assert x.image_dir == y.image_dir
        assert x.labels.dtype == y.labels.dtype and x.has_image.dtype == y.has_image.dtype
        np.testing.assert_array_equal(x.labels, y.labels)
        np.testing.assert_array_equal(x.has_image, y.has_image)


def _forbid_listing(monkeypatch):
    def boom(image_dir):
        raise AssertionError(f"listed {image_dir}: the cache was not used")

    monkeypatch.setattr(fi, "list_image_frames", boom)


def test_cache_is_written_and_read(tree, cache_dir, monkeypatch):
    first = build_split_index(tree.images, tree.split_dir)
    files = list(cache_dir.glob("frame_index-*.npz"))
    assert len(files) == 1
    assert not [p for p in cache_dir.iterdir() if p.suffix == ".tmp"]
    _forbid_listing(monkeypatch)
    second = build_split_index(tree.images, tree.split_dir)
    _same(first, second)
    assert second.stats() == first.stats()


def test_explicit_cache_dir_and_no_cache(tree, tmp_path, cache_dir):
    other = tmp_path / "other_cache"
    build_split_index(tree.images, tree.split_dir, cache_dir=other)
    assert len(list(other.glob("*.npz"))) == 1
    assert not cache_dir.exists()
    build_split_index(tree.images, tree.split_dir, use_cache=False)
    assert not cache_dir.exists()


def test_editing_a_label_file_invalidates_the_cache(tree, monkeypatch):
    first = build_split_index(tree.images, tree.split_dir)
    path = tree.split_dir / "10-60-1280x720.txt"
    labels = tree.videos["10-60-1280x720"][0].copy()
    labels[0] = (labels[0] + 2) % NUM_CLASSES  # same file size: only the mtime tells
    before = path.stat().st_mtime_ns
    write_label_file(path, labels)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
    second = build_split_index(tree.images, tree.split_dir)
    video = next(v for v in second if v.name == "10-60-1280x720")
    np.testing.assert_array_equal(video.labels, labels)
    assert not np.array_equal(
        video.labels, next(v for v in first if v.name == "10-60-1280x720").labels
    )
    # a longer file (new size)
    write_label_file(path, np.concatenate([labels, [4, 4]]))
    third = build_split_index(tree.images, tree.split_dir)
    assert next(v for v in third if v.name == "10-60-1280x720").num_frames == 12
    # and once re-indexed, the new cache is used
    _forbid_listing(monkeypatch)
    _same(third, build_split_index(tree.images, tree.split_dir))


def test_adding_an_image_or_a_video_invalidates_the_cache(tree):
    build_split_index(tree.images, tree.split_dir)
    write_images(tree.images / "10-60-1280x720", [4])
    video = next(
        v for v in build_split_index(tree.images, tree.split_dir) if v.name == "10-60-1280x720"
    )
    assert video.has_image[3]
    write_images(tree.images / "99-noimages", [1, 2])
    video = next(
        v for v in build_split_index(tree.images, tree.split_dir) if v.name == "99-noimages"
    )
    assert video.has_image.tolist() == [True, True, False, False, False, False]
    write_label_file(tree.split_dir / "zz-new.txt", [0, 1])
    assert [v.name for v in build_split_index(tree.images, tree.split_dir)][-1] == "zz-new"


def test_corrupt_cache_is_rebuilt(tree, cache_dir, caplog):
    first = build_split_index(tree.images, tree.split_dir)
    (cache_file,) = cache_dir.glob("*.npz")
    cache_file.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="abaw_expr.data.frame_index"):
        second = build_split_index(tree.images, tree.split_dir)
    _same(first, second)
    assert any("unreadable frame-index cache" in r.getMessage() for r in caplog.records)


# --- video names and test lists -----------------------------------------------------------


@pytest.mark.parametrize("name", ["../../etc", "a/b", "..", ".", "", ".hidden", "a\\b", "/abs"])
def test_unsafe_names(name, tmp_path):
    with pytest.raises(InputError, match="unsafe"):
        check_video_name(name, tmp_path)


@pytest.mark.parametrize("name", ["../../etc", "a/b", "/etc/passwd", ".."])
def test_unsafe_names_in_a_list_file(tmp_path, name):
    path = tmp_path / "test.txt"
    path.write_text(f"ok_video\n{name}\n")
    with pytest.raises(InputError, match="unsafe") as info:
        read_video_list(path)
    assert f"{path}:2:" in str(info.value)


def _list(tmp_path, text: str):
    path = tmp_path / "list.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_video_list_forms(tmp_path):
    path = _list(tmp_path, "video,frames\n\nv1\nv2,120\n  \n# a comment\nv3.mp4 , 7\nv4_left,\n\n")
    assert read_video_list(path) == [("v1", None), ("v2", 120), ("v3", 7), ("v4_left", None)]


def test_read_video_list_name_header_and_bom(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("\ufeffname\r\nv1\r\nv2,3\r\n".encode())
    assert read_video_list(path) == [("v1", None), ("v2", 3)]


def test_read_video_list_header_after_a_comment(tmp_path):
    assert read_video_list(_list(tmp_path, "# ABAW test set\nvideo,frames\nv1,5\n")) == [("v1", 5)]


def test_read_video_list_duplicates(tmp_path):
    path = _list(tmp_path, "v1\nv2\n\nv1,30\n")
    with pytest.raises(InputError, match="twice") as info:
        read_video_list(path)
    assert f"{path}:4:" in str(info.value)
    path = _list(tmp_path, "v1.mp4\nv1\n")
    with pytest.raises(InputError, match="twice"):
        read_video_list(path)


@pytest.mark.parametrize("count", ["0", "-3", "abc", "1.5", "1e3"])
def test_read_video_list_bad_counts(tmp_path, count):
    path = _list(tmp_path, f"video,frames\nv1,10\nv2,{count}\n")
    with pytest.raises(InputError, match="frame count") as info:
        read_video_list(path)
    assert f"{path}:3:" in str(info.value)


def test_read_video_list_too_many_fields(tmp_path):
    path = _list(tmp_path, "v1,10,extra\n")
    with pytest.raises(InputError) as info:
        read_video_list(path)
    assert f"{path}:1:" in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "video,frames\n", "# nothing\n"])
def test_read_video_list_empty(tmp_path, text):
    path = _list(tmp_path, text)
    with pytest.raises(InputError, match="no videos") as info:
        read_video_list(path)
    assert str(path) in str(info.value)


def test_read_video_list_missing_file_folder_and_non_utf8(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_video_list(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="folder"):
        read_video_list(tmp_path)
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"vid\xe9o\n")
    with pytest.raises(InputError, match="UTF-8") as info:
        read_video_list(path)
    assert str(path) in str(info.value)


def test_build_test_index(tmp_path, caplog):
    images = tmp_path / "cropped_aligned"
    write_images(images / "t1", [1, 2, 5])
    write_images(images / "t2", [2, 3, 9])
    write_images(images / "t3", [1, 2, 3, 4, 5, 6])
    listing = _list(tmp_path, "video,frames\nt1,8\nt2\nt3,4\n")
    with caplog.at_level(logging.WARNING, logger="abaw_expr.data.frame_index"):
        index = build_test_index(images, listing)
    t1, t2, t3 = index.videos
    assert [v.name for v in index] == ["t1", "t2", "t3"]
    assert all(v.split == "Test_Set" for v in index)
    assert all((v.labels == -1).all() and v.labels.dtype == np.int8 for v in index)
    # t1: the count from the list, trailing frames without a face included
    assert t1.num_frames == 8
    assert t1.has_image.tolist() == [True, True, False, False, True, False, False, False]
    # t2: no count, so up to the last image, with a warning
    assert t2.num_frames == 9
    assert np.flatnonzero(t2.has_image).tolist() == [1, 2, 8]
    # t3: images beyond the count are ignored
    assert t3.num_frames == 4 and t3.has_image.all()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("t2" in m and "last image" in m for m in warnings)
    assert not any("t1" in m or "t3" in m for m in warnings)
    assert index.stats()["usable"] == 0


def test_build_test_index_no_images_no_count(tmp_path):
    images = tmp_path / "cropped_aligned"
    images.mkdir()
    listing = _list(tmp_path, "ghost\n")
    with pytest.raises(InputError, match="ghost"):
        build_test_index(images, listing)
    # with a count it is fine: every frame is a frame without a face
    listing = _list(tmp_path, "ghost,3\n")
    (video,) = build_test_index(images, listing).videos
    assert video.num_frames == 3 and not video.has_image.any()


# --- scale --------------------------------------------------------------------------------


@pytest.fixture
def scratch(tmp_path):
    """A folder for 10^5 empty files: in RAM (/dev/shm) where there is one, since creating that
    many files on a busy disk can take a minute; removed afterwards either way."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="abaw-expr-test-", dir=shm))
        n_videos = 50
    else:
        folder = tmp_path / "scale"
        folder.mkdir()
        n_videos = 20
    try:
        yield folder, n_videos
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_many_files(scratch, cache_dir, monkeypatch):
    root, n_videos = scratch
    n_frames = 2000
    images = root / "cropped_aligned"
    split = root / "annotations" / "Train_Set"
    split.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected_usable = 0
    for v in range(n_videos):
        folder = images / f"video{v:03d}"
        folder.mkdir(parents=True)
        missing = set(rng.choice(n_frames, size=20, replace=False).tolist())  # 0-based
        for f in range(n_frames):
            if f not in missing:
                open(os.path.join(folder, f"{f + 1:05d}.jpg"), "wb").close()
        labels = rng.integers(-1, NUM_CLASSES, size=n_frames)
        write_label_file(split / f"video{v:03d}.txt", labels)
        usable = labels >= 0
        usable[list(missing)] = False
        expected_usable += int(usable.sum())
    index = build_split_index(images, split)
    stats = index.stats()
    assert stats["videos"] == n_videos
    assert stats["frames"] == n_videos * n_frames
    assert stats["usable"] == expected_usable
    assert sum(int(v.has_image.sum()) for v in index) == n_videos * (n_frames - 20)
    assert list(cache_dir.glob("*.npz"))
    _forbid_listing(monkeypatch)
    again = build_split_index(images, split)
    assert again.stats() == stats
