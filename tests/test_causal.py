"""Causal predictions: each face's values come from the window that ends at it, and no later
frame can change them."""

from __future__ import annotations

import numpy as np
import torch

from abaw_expr.inference.causal import causal_probabilities, causal_windows
from abaw_expr.inference.probabilities import frame_values
from abaw_expr.model.temporal import TemporalHead


def _head(tasks=("expr",)):
    torch.manual_seed(0)
    return TemporalHead(feature_dim=16, tasks=tasks).eval()


def test_windows_end_at_each_face_and_hold_the_last_seq_len():
    rows, lengths = causal_windows(6, 4)
    assert lengths.tolist() == [1, 2, 3, 4, 4, 4]
    assert rows[0].tolist() == [0, 0, 0, 0]
    assert rows[2].tolist() == [0, 1, 2, 2]
    assert rows[5].tolist() == [2, 3, 4, 5]


def test_a_face_sees_only_its_own_window_and_no_later_frame():
    head = _head(("expr", "va", "au"))
    features = torch.randn(20, 16)
    frames = np.array([1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22])
    values = causal_probabilities(head, features, frames, 24, seq_len=8, batch_size=3)
    for i in (0, 4, 12, 19):
        window = features[max(0, i - 7) : i + 1][None]
        with torch.no_grad():
            expected = frame_values(head(window), head.tasks)[0, -1].numpy()
        np.testing.assert_allclose(values[frames[i]], expected, rtol=1e-5, atol=1e-6)
    # a later face changed: nothing before it moves
    changed = features.clone()
    changed[15:] = torch.randn(5, 16)
    again = causal_probabilities(head, changed, frames, 24, seq_len=8)
    np.testing.assert_array_equal(again[: frames[15]], values[: frames[15]])
    assert not np.allclose(again[frames[15]], values[frames[15]])


def test_frames_without_a_face_take_the_last_earlier_face_and_the_prior_before_any():
    head = _head()
    features = torch.randn(3, 16)
    frames = np.array([2, 3, 7])
    values = causal_probabilities(head, features, frames, 10, seq_len=4)
    np.testing.assert_allclose(values[:2], 1 / 8)
    np.testing.assert_array_equal(values[4], values[3])
    np.testing.assert_array_equal(values[6], values[3])
    np.testing.assert_array_equal(values[9], values[7])
    assert not np.allclose(values[7], values[3])
