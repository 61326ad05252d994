"""Per-frame predictions: overlapping windows averaged, frames without a face filled, smoothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abaw_expr.data.frame_index import FrameIndex, VideoFrames
from abaw_expr.inference.probabilities import (
    fill_from_nearest,
    predict_probabilities,
    smooth_probabilities,
)
from abaw_expr.model import ExpressionModel, TemporalHead


def test_fill_from_nearest_takes_the_closest_known_frame_earlier_on_ties():
    values = np.arange(7, dtype=float)[:, None]
    known = np.array([False, True, False, False, False, True, False])
    filled = fill_from_nearest(values, known)[:, 0]
    assert filled.tolist() == [1, 1, 1, 1, 5, 5, 5]


def test_smoothing_ignores_frames_without_a_face():
    probs = np.tile([[1.0, 0.0]], (9, 1))
    probs[4] = [0.0, 1.0]
    known = np.ones(9, bool)
    known[4] = False  # its (garbage) value must not leak into neighbours
    out = smooth_probabilities(probs, known, 3)
    assert np.allclose(out[known], [1.0, 0.0])


class FeatureSource:
    """Stands in for a feature cache: a fixed random feature per frame."""

    def __init__(self, features):
        self.features = features

    def read(self, video, frames):
        return self.features[video][frames]


@pytest.fixture
def video_index():
    rng = np.random.default_rng(0)
    has_image = np.ones(50, bool)
    has_image[[0, 10, 11, 12, 49]] = False
    video = VideoFrames("v", None, np.zeros(50, np.int8), has_image)
    return FrameIndex([video]), FeatureSource({"v": rng.normal(size=(50, 888)).astype(np.float32)})


def test_frame_only_model_gives_the_same_answer_for_any_window_overlap(video_index):
    index, cache = video_index
    torch.manual_seed(0)
    model = ExpressionModel(None, TemporalHead("no_att_trans"))
    a = predict_probabilities(model, index, cache, seq_len=8, stride=8)[0]
    b = predict_probabilities(model, index, cache, seq_len=8, stride=3)[0]
    assert a.shape == (50, 8) and np.allclose(a.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a[[10, 11]], a[[9, 9]])  # filled from the nearest face
    np.testing.assert_allclose(a[12], a[13])


def test_overlapping_windows_are_averaged(video_index):
    index, cache = video_index
    torch.manual_seed(0)
    model = ExpressionModel(None, TemporalHead("combine")).eval()
    frames = np.flatnonzero(index.videos[0].has_image)
    got = predict_probabilities(model, index, cache, seq_len=8, stride=4)[0]
    # Frame frames[5] sits in windows starting at positions 0 and 4 of the face frames.
    feats = torch.from_numpy(cache.read("v", frames))
    with torch.inference_mode():
        p0 = torch.softmax(model.head(feats[None, 0:8]), -1)[0, 5]
        p1 = torch.softmax(model.head(feats[None, 4:12]), -1)[0, 1]
    np.testing.assert_allclose(got[frames[5]], ((p0 + p1) / 2).numpy(), atol=1e-5)
