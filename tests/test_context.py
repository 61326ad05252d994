"""The temporal branches use context: on the probe (frames that carry no expression of their
own inside labelled segments) the paper's head beats the frame-only head by a clear margin,
and that margin is gone when the branches are cut off from the other frames.

The cuts patch ``SelfAttention.forward``, which both branches use; either branch alone carries
most of the margin (cutting one left 0.28 and 0.31), so each branch's own reach across frames
is checked on a head whose classifier reads that branch alone.

Trained through the project's path (``train --features`` on a cache in the project's format),
at a size that takes seconds: windows of 16, segments of 24..48 frames, 2 epochs.
Measured margins are in benchmarks/RESULTS.md ("Context test").
"""

from __future__ import annotations

import pytest
import torch

from abaw_expr.model import temporal
from abaw_expr.synthetic.context_probe import prepare_probe, probe_config
from abaw_expr.synthetic.probe import ProbeSpec, read_probe_masks
from abaw_expr.training.ablation import evaluate_on_features
from abaw_expr.training.loop import train

SPEC = ProbeSpec(train_videos=8, val_videos=4, frames=192, segment=(24, 48), seed=1)
MARGIN = 0.25  # macro F1 on the uninformative frames, combine minus frame-only


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small matrices: on a shared 2-core machine one thread is steadier (and 4x faster under
    load) than two that wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    return root, prepare_probe(root, SPEC)


def uninformative_f1(probe, tmp_path, variant: str) -> float:
    root, weights = probe
    config = probe_config(weights, epochs=2, seq_len=16, stride=8)
    config.model.variant = variant
    run = train(
        config,
        root / "cache",
        tmp_path / variant,
        features_dir=root / "cache",
        enable_progress_bar=False,
    )
    masks = read_probe_masks(root / "cache" / "Validation_Set")
    metrics = evaluate_on_features(
        run["best_checkpoint"],
        root / "cache",
        tmp_path / variant / "eval",
        {"uninformative": masks["uninformative"]},
    )
    print(variant, metrics["subsets"]["uninformative"]["macro_f1"])
    return metrics["subsets"]["uninformative"]["macro_f1"]


def zeroed(self, x, mask=None):
    """The branch cut off: no output, no gradient to anything before it."""
    return torch.zeros_like(x)


def self_only(self, x, mask=None):
    """A mask that hides every other frame: each frame attends only to itself."""
    qkv = self.to_qkv(x).unflatten(-1, (3, self.heads, self.head_dim))
    return self.to_out(qkv[..., 2, :, :].flatten(2))


@pytest.fixture(scope="module")
def frame_only(probe, tmp_path_factory):
    return uninformative_f1(probe, tmp_path_factory.mktemp("frame"), "no_att_trans")


def test_combine_beats_frame_only_on_frames_without_expression(probe, frame_only, tmp_path):
    combine = uninformative_f1(probe, tmp_path, "combine")
    assert combine - frame_only > MARGIN, (combine, frame_only)


@pytest.mark.parametrize("cut", [zeroed, self_only], ids=["outputs-zeroed", "self-only-mask"])
def test_margin_is_gone_when_branches_lose_context(probe, frame_only, tmp_path, monkeypatch, cut):
    monkeypatch.setattr(temporal.SelfAttention, "forward", cut)
    combine = uninformative_f1(probe, tmp_path, "combine")
    assert combine - frame_only < MARGIN / 2, (combine, frame_only)


@pytest.mark.parametrize("branch", ["attention", "encoder"])
def test_each_branch_on_its_own_reads_the_other_frames(branch):
    """The classifier is set, on purpose, to read one branch alone (the columns of the frame's
    own features and of the other branch zeroed): a change to another real frame must reach
    this frame's logits through that branch, and a change to a padded frame must not."""
    torch.manual_seed(0)
    head = temporal.TemporalHead("combine", feature_dim=16, head_dim=8, ff_dim=32).eval()
    d = head.feature_dim
    part = {"attention": 1, "encoder": 2}[branch]  # [features, attention, encoder]
    with torch.no_grad():
        keep = torch.zeros_like(head.classifier.weight)
        keep[:, part * d : (part + 1) * d] = 1
        head.classifier.weight.mul_(keep)
    x = torch.randn(2, 6, d)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[:, -1] = False  # the last frame is padding
    base = head(x, mask)
    other = x.clone()
    other[:, 3] += torch.randn(d)  # not a constant: LayerNorm would not see it
    moved = (head(other, mask) - base).abs().amax(-1)  # (windows, frames)
    assert moved[:, :3].min() > 1e-3  # frames 1 to 3 of both windows
    padded = x.clone()
    padded[:, 5] += torch.randn(d)
    torch.testing.assert_close(head(padded, mask)[:, :5], base[:, :5])
