"""Causal predictions: each face's values come from the window that ends at it, and no later
frame can change them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abaw_expr.config import Config
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


# A causal head (model.causal, beyond the paper): each position attends to itself and earlier
# positions only, in both branches, so every output is a causal prediction.


@pytest.mark.parametrize(
    ("variant", "positional"),
    [("combine", "none"), ("combine", "relative"), ("only_att", "none"), ("only_trans", "none")],
)
def test_a_causal_heads_output_never_depends_on_a_later_frame(variant, positional):
    torch.manual_seed(0)
    features = torch.randn(2, 10, 16)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False  # padding at the end, as windows have it
    changed = features.clone()
    changed[:, 6:] = 10 * torch.randn(2, 4, 16)
    for causal in (True, False):
        torch.manual_seed(1)
        head = TemporalHead(variant, feature_dim=16, positional=positional, causal=causal).eval()
        with torch.no_grad():
            before, after = head(features, mask), head(changed, mask)
            unmasked = head(features)
        # the paper's head (causal=False) sees the later frames: the check can fail
        assert torch.allclose(before[:, :6], after[:, :6], atol=1e-6) == causal
        assert torch.allclose(before[:, :6], unmasked[:, :6], atol=1e-6) == causal
        assert not torch.allclose(before[:, 6], after[:, 6])
        assert torch.isfinite(head(features, torch.zeros_like(mask))).all()
        # an unreadable slot inside the window, the first one too: never attended to
        holes = mask.clone()
        holes[1, [0, 3]] = False
        filled = features.clone()
        filled[1, [0, 3]] = 10 * torch.randn(2, 16)
        with torch.no_grad():
            out, out_filled = head(features, holes), head(filled, holes)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[holes], out_filled[holes])
        if causal:  # a slot with no real one at or before it attends to itself (never NaN)
            with torch.no_grad():
                alone = head(features[1:, :1])[0, 0]
            torch.testing.assert_close(out[1, 0], alone)


def test_a_causal_head_gives_every_faces_causal_value_in_one_pass():
    """``causal_probabilities`` of a causal head is the head on the truncated window, and for
    the first ``seq_len`` faces the very positions of one pass over them."""
    torch.manual_seed(0)
    head = TemporalHead(feature_dim=16, tasks=("expr", "va", "au"), causal=True).eval()
    features = torch.randn(12, 16)
    frames = np.arange(12)
    values = causal_probabilities(head, features, frames, 12, seq_len=8, batch_size=5)
    with torch.no_grad():
        one_pass = frame_values(head(features[None, :8]), head.tasks)[0].numpy()
        last = frame_values(head(features[None, 4:12]), head.tasks)[0, -1].numpy()
    np.testing.assert_allclose(values[:8], one_pass, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values[11], last, rtol=1e-5, atol=1e-6)


def test_the_causal_flag_reaches_the_config_the_model_and_a_checkpoint(tmp_path):
    from abaw_expr.cli import build_parser
    from abaw_expr.cli.arguments import load_config
    from abaw_expr.inference.checkpoint import load_model, save_model_checkpoint
    from abaw_expr.model.build import build_model
    from abaw_expr.training.ablation import arm_config

    train = ["train", "--annotations", "a", "--out", "o"]
    parser = build_parser()
    assert load_config(parser.parse_args(train)).model.causal is False  # the paper's
    config = load_config(parser.parse_args([*train, "--causal"]))
    assert config.model.causal is True
    assert arm_config(Config(), "combine+causal", 0).model.causal is True
    assert arm_config(Config(), "combine", 0).model.causal is False

    torch.manual_seed(0)
    model = build_model(config, with_backbone=False).eval()
    assert model.head.causal and model.head.attention.causal and model.head.encoder.attn.causal
    path = tmp_path / "causal.ckpt"
    save_model_checkpoint(model, config, path)
    loaded, loaded_config = load_model(path)
    assert loaded_config.model.causal is True and loaded.head.causal
    assert loaded.head.attention.causal and loaded.head.encoder.attn.causal
    features = torch.randn(1, 6, model.head.feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded.head(features), model.head(features))
