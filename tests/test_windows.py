"""Cutting frame numbers into fixed-length windows: exact cases and invariants over a grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abaw_expr.data.windows import Windows, make_windows, split_runs, window_starts


def _check_invariants(frames: np.ndarray, w: Windows, seq_len: int) -> None:
    """What every result must satisfy, whatever the cutting rule."""
    assert w.frames.dtype == np.int64 and w.mask.dtype == bool
    assert w.frames.shape == w.mask.shape == (len(w), seq_len)
    inputs = set(frames.tolist())
    covered = set()
    for row, mask in zip(w.frames, w.mask, strict=True):
        k = int(mask.sum())
        assert k >= 1, "a window of padding only"
        assert mask[:k].all() and not mask[k:].any(), "the mask is not a prefix"
        real = row[:k]
        assert set(real.tolist()) <= inputs, "a True-mask position outside the input"
        assert (np.diff(real) > 0).all(), "real frames not increasing"
        assert (row[k:] == real[-1]).all(), "padding does not repeat the last frame"
        covered.update(real.tolist())
    assert covered == inputs, f"frames in no window: {sorted(inputs - covered)}"


def _expected_count(n: int, seq_len: int, stride: int) -> int:
    if n == 0:
        return 0
    if n <= seq_len:
        return 1
    return math.ceil((n - seq_len) / stride) + 1


GRID = [
    (n, seq_len, stride)
    for seq_len in (1, 2, 3, 4, 5, 8, 16)
    for stride in sorted({1, 2, 3, max(1, seq_len // 2), seq_len - 1, seq_len} - {0})
    if stride <= seq_len
    for n in (0, 1, 2, 3, 5, seq_len - 1, seq_len, seq_len + 1, 2 * seq_len, 2 * seq_len + 3, 37)
    if n >= 0
]


@pytest.mark.parametrize(("n", "seq_len", "stride"), sorted(set(GRID)))
def test_grid_contiguous(n, seq_len, stride):
    frames = np.arange(n, dtype=np.int64)
    w = make_windows(frames, seq_len, stride)
    _check_invariants(frames, w, seq_len)
    assert len(w) == _expected_count(n, seq_len, stride)
    # window i starts at position i * stride of the input and holds the next seq_len frames
    for i, (row, mask) in enumerate(zip(w.frames, w.mask, strict=True)):
        start = i * stride
        real = frames[start : start + seq_len]
        assert row[: len(real)].tolist() == real.tolist()
        assert int(mask.sum()) == len(real)
    if n:
        assert w.frames[-1][w.mask[-1]][-1] == n - 1  # the last window reaches the end


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("seq_len", "stride"), [(1, 1), (4, 2), (5, 5), (8, 3), (16, 16)])
def test_grid_with_gaps(seed, seq_len, stride):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    frames = np.sort(rng.choice(200, size=n, replace=False)).astype(np.int64)
    for split in (False, True):
        w = make_windows(frames, seq_len, stride, split_at_gaps=split)
        _check_invariants(frames, w, seq_len)
        if split:
            for row, mask in zip(w.frames, w.mask, strict=True):
                assert (np.diff(row[mask]) == 1).all(), "a window spans a gap"
            runs = split_runs(frames)
            assert len(w) == sum(_expected_count(len(r), seq_len, stride) for r in runs)
        else:
            assert len(w) == _expected_count(n, seq_len, stride)


def test_shorter_than_seq_len():
    w = make_windows(np.array([3, 4, 5]), seq_len=5, stride=5)
    assert w.frames.tolist() == [[3, 4, 5, 5, 5]]
    assert w.mask.tolist() == [[True, True, True, False, False]]


def test_single_frame():
    w = make_windows([7], seq_len=4, stride=4)
    assert w.frames.tolist() == [[7, 7, 7, 7]]
    assert w.mask.tolist() == [[True, False, False, False]]


def test_exactly_seq_len():
    w = make_windows(np.arange(10, 14), seq_len=4, stride=4)
    assert w.frames.tolist() == [[10, 11, 12, 13]]
    assert w.mask.all()


def test_seq_len_plus_one():
    w = make_windows(np.arange(5), seq_len=4, stride=4)
    assert w.frames.tolist() == [[0, 1, 2, 3], [4, 4, 4, 4]]
    assert w.mask.tolist() == [[True] * 4, [True, False, False, False]]


def test_seq_len_plus_one_overlapping():
    w = make_windows(np.arange(5), seq_len=4, stride=2)
    assert w.frames.tolist() == [[0, 1, 2, 3], [2, 3, 4, 4]]
    assert w.mask.tolist() == [[True] * 4, [True, True, True, False]]


def test_overlapping_stride():
    w = make_windows(np.arange(8), seq_len=4, stride=2)
    assert w.frames.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert w.mask.all()


def test_stride_equal_seq_len_with_remainder():
    w = make_windows(np.arange(10), seq_len=4, stride=4)
    assert w.frames.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
    assert w.mask.tolist() == [[True] * 4, [True] * 4, [True, True, False, False]]


def test_frame_numbers_not_positions():
    frames = np.array([2, 5, 6, 9, 10, 11])
    w = make_windows(frames, seq_len=4, stride=4)
    assert w.frames.tolist() == [[2, 5, 6, 9], [10, 11, 11, 11]]


def test_split_at_gaps_exact():
    frames = np.array([0, 1, 2, 3, 4, 10, 11, 20])
    w = make_windows(frames, seq_len=3, stride=3, split_at_gaps=True)
    assert w.frames.tolist() == [[0, 1, 2], [3, 4, 4], [10, 11, 11], [20, 20, 20]]
    assert w.mask.tolist() == [
        [True, True, True],
        [True, True, False],
        [True, True, False],
        [True, False, False],
    ]
    # without split_at_gaps the same frames run across the jumps
    w = make_windows(frames, seq_len=3, stride=3)
    assert w.frames.tolist() == [[0, 1, 2], [3, 4, 10], [11, 20, 20]]


def test_split_runs():
    assert [r.tolist() for r in split_runs(np.array([1, 2, 4, 5, 6, 9]))] == [
        [1, 2],
        [4, 5, 6],
        [9],
    ]
    assert split_runs(np.array([], dtype=np.int64)) == []


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("seq_len", [1, 4, 64])
def test_empty_input(seq_len, split):
    for empty in ([], np.array([], dtype=np.int64), np.zeros(0, dtype=np.int32)):
        w = make_windows(empty, seq_len, seq_len, split_at_gaps=split)
        assert len(w) == 0
        assert w.frames.shape == (0, seq_len) and w.frames.dtype == np.int64
        assert w.mask.shape == (0, seq_len) and w.mask.dtype == bool


@pytest.mark.parametrize(("seq_len", "stride"), [(0, 1), (1, 0), (-1, 4), (4, -2), (0, 0)])
@pytest.mark.parametrize("frames", [[], [0, 1, 2]], ids=["empty", "three"])
def test_invalid_seq_len_or_stride(seq_len, stride, frames):
    with pytest.raises(ValueError):
        make_windows(np.array(frames, dtype=np.int64), seq_len, stride)
    with pytest.raises(ValueError):
        window_starts(len(frames), seq_len, stride)


def test_window_starts():
    assert window_starts(0, 4, 4) == []
    assert window_starts(4, 4, 4) == [0]
    assert window_starts(5, 4, 4) == [0, 4]
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 9]


def test_default_is_the_papers_64():
    w = make_windows(np.arange(130))
    assert w.frames.shape == (3, 64)
    assert w.mask.sum() == 130
