"""Causal predictions: a face's values from the window that *ends* at it, the last
``seq_len`` faces of that person up to and including it, never a later frame.

This is what a live source allows (``abaw-expr live``). Files use centred, overlapping windows
instead (:func:`.probabilities.window_probabilities`); :func:`causal_probabilities` gives a
file's causal values, so that the two can be compared on data with labels, and it runs the
very function the live path runs per frame (:func:`window_end_values`), so that a video
predicted here and the same frames delivered live give the same values.

Frames without a face take the values of the person's last earlier face (live cannot look
ahead for the nearest one); frames before their first face take the prior
(:func:`.probabilities.frame_prior`).
"""

from __future__ import annotations

import numpy as np
import torch

from abaw_expr.inference.engine import autocast_for
from abaw_expr.inference.probabilities import frame_prior, frame_values
from abaw_expr.tasks import NUM_CLASSES


def causal_windows(count: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``count`` faces in order, the indices of the window that ends at it
    (``(count, seq_len)``, padded at the end by repeating its last index) and the window's
    length (``(count,)``): face ``i`` sees faces ``max(0, i - seq_len + 1) .. i``."""
    ends = np.arange(count)
    lengths = np.minimum(ends + 1, seq_len)
    offsets = np.minimum(np.arange(seq_len)[None, :], lengths[:, None] - 1)
    return (ends - lengths + 1)[:, None] + offsets, lengths


@torch.inference_mode()
def window_end_values(head: torch.nn.Module, windows: torch.Tensor, lengths) -> torch.Tensor:
    """The values (:func:`.probabilities.frame_values`) at the last real position of each
    window: ``windows`` (B, seq_len, feature_dim), real up to ``lengths`` (B,), padding after
    (never attended to). Returns (B, width) float32."""
    lengths = torch.as_tensor(lengths, device=windows.device)
    positions = torch.arange(windows.shape[1], device=windows.device)
    mask = positions[None, :] < lengths[:, None]
    with autocast_for(windows.device):
        outputs = head(windows, mask)
    last = outputs[torch.arange(len(lengths), device=windows.device), lengths - 1]
    return frame_values(last.float(), getattr(head, "tasks", ("expr",)))


@torch.inference_mode()
def causal_probabilities(
    head: torch.nn.Module,
    features: torch.Tensor,
    frames: np.ndarray,
    num_frames: int,
    seq_len: int = 64,
    batch_size: int = 64,
) -> np.ndarray:
    """(num_frames, width) float32 causal values of one person of a video from the features
    of their face frames (``features[i]`` is frame index ``frames[i]``, 0-based, increasing);
    the counterpart of :func:`.probabilities.window_probabilities` (no smoothing: a centred
    average would look ahead)."""
    tasks = getattr(head, "tasks", ("expr",))
    prior = frame_prior(tasks, getattr(head, "output_width", NUM_CLASSES))
    values = np.zeros((len(frames), len(prior)), np.float32)
    rows, lengths = causal_windows(len(frames), seq_len)
    for start in range(0, len(frames), batch_size):
        index = torch.from_numpy(rows[start : start + batch_size]).to(features.device)
        chunk = window_end_values(head, features[index], lengths[start : start + batch_size])
        values[start : start + len(index)] = chunk.cpu().numpy()
    out = np.tile(prior.astype(np.float32), (num_frames, 1))
    if len(frames):
        # each frame the last face at or before it; before the first face, the prior
        latest = np.searchsorted(frames, np.arange(num_frames), side="right") - 1
        seen = latest >= 0
        out[seen] = values[latest[seen]]
    return out
