"""How a video's frames are cut into the fixed-length sequences the model sees.

Kept apart from where frames come from (images, a feature cache, a live video): every path,
training, evaluation, prediction and feature extraction, cuts windows here, so the padding
and gap rules are written once.

A window is ``seq_len`` frame numbers plus a mask. Windows step by ``stride`` over the
*selected* frames of a video (for training: annotated frames with an image; for inference:
every frame with an image), so frames without a face are skipped, not padded. Where the
frames run out, the window is padded by repeating its last frame with ``mask=False``:
padding never reaches the loss or the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    """``frames[w, t]`` is the 0-based frame number at position ``t`` of window ``w``."""

    frames: np.ndarray  # (W, seq_len) int64
    mask: np.ndarray  # (W, seq_len) bool, False at padding

    def __len__(self) -> int:
        return len(self.frames)


def window_starts(n: int, seq_len: int, stride: int) -> list[int]:
    """Start offsets so that windows of ``seq_len`` every ``stride`` cover all ``n`` items."""
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be >= 1, got {seq_len}, {stride}")
    if n <= 0:
        return []
    starts = [0]
    # stride > seq_len skips frames between windows (subsampling); no window starts past the end
    while starts[-1] + seq_len < n and starts[-1] + stride < n:
        starts.append(starts[-1] + stride)
    return starts


def split_runs(frames: np.ndarray) -> list[np.ndarray]:
    """Split sorted frame numbers into runs of consecutive numbers."""
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    return np.split(frames, breaks)


def make_windows(
    frames: np.ndarray, seq_len: int = 64, stride: int = 64, split_at_gaps: bool = False
) -> Windows:
    """Cut sorted 0-based frame numbers into windows.

    With ``split_at_gaps`` no window spans a jump in frame numbers (a missing face or an
    unannotated stretch): each run of consecutive frames is windowed on its own.
    """
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be >= 1, got {seq_len}, {stride}")
    frames = np.asarray(frames, dtype=np.int64)
    runs = split_runs(frames) if split_at_gaps else ([frames] if len(frames) else [])
    rows, masks = [], []
    for run in runs:
        for start in window_starts(len(run), seq_len, stride):
            chunk = run[start : start + seq_len]
            pad = seq_len - len(chunk)
            rows.append(np.concatenate([chunk, np.full(pad, chunk[-1], dtype=np.int64)]))
            masks.append(np.arange(seq_len) < len(chunk))
    if not rows:
        return Windows(np.zeros((0, seq_len), np.int64), np.zeros((0, seq_len), bool))
    return Windows(np.stack(rows), np.stack(masks))
