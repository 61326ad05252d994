"""Model tests: shapes, gradients, freezing, masking, parameter counts, weight loading."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
from torch import nn
from torchvision.models import RegNet_Y_1_6GF_Weights, regnet_y_1_6gf

from abaw_expr.errors import InputError
from abaw_expr.model import (
    FEATURE_DIM,
    VARIANTS,
    ExpressionModel,
    RegNetFeatures,
    TemporalHead,
    build_backbone,
    count_parameters,
)
from abaw_expr.tasks import NUM_CLASSES

BRANCHES = {"combine": 3, "only_att": 2, "only_trans": 2, "no_att_trans": 1}


def _check_grads(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        else:
            assert p.grad is None, f"frozen {name} got a gradient"


def _batchnorms(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_backward_frames(variant: str) -> None:
    torch.manual_seed(0)
    model = ExpressionModel(build_backbone("none"), TemporalHead(variant)).train()
    out = model(torch.randn(2, 4, 3, 64, 64))
    assert out.shape == (2, 4, NUM_CLASSES)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    _check_grads(model)
    frozen = [p for stage in model.backbone.frozen_modules() for p in stage.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_backward_features(variant: str) -> None:
    torch.manual_seed(0)
    model = ExpressionModel(None, TemporalHead(variant)).train()
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    out = model(torch.randn(2, 8, FEATURE_DIM), mask)
    assert out.shape == (2, 8, NUM_CLASSES)
    assert torch.isfinite(out).all()
    out[mask].square().mean().backward()
    _check_grads(model)
    assert model.head.classifier.in_features == BRANCHES[variant] * FEATURE_DIM


def test_frozen_batchnorm_stays_in_eval_and_keeps_stats() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("none", frozen_stages=2).train()
    frozen_bn = [bn for stage in backbone.frozen_modules() for bn in _batchnorms(stage)]
    live_bn = _batchnorms(backbone.trunk_output.block2)
    assert frozen_bn and all(not bn.training for bn in frozen_bn)
    assert all(bn.training for bn in live_bn)
    before = [bn.running_mean.clone() for bn in frozen_bn + live_bn]
    backbone(torch.randn(4, 3, 64, 64))
    after = [bn.running_mean for bn in frozen_bn + live_bn]
    n = len(frozen_bn)
    assert all(torch.equal(b, a) for b, a in zip(before[:n], after[:n], strict=True))
    assert not torch.equal(before[n], after[n])
    # eval() and a later train() keep working
    backbone.eval()
    assert not any(bn.training for bn in _batchnorms(backbone))
    backbone.train()
    assert all(not bn.training for bn in frozen_bn) and all(bn.training for bn in live_bn)


def test_frozen_stages_extremes() -> None:
    open_ = build_backbone("none", frozen_stages=0).train()
    assert all(p.requires_grad for p in open_.parameters())
    assert all(bn.training for bn in _batchnorms(open_))

    closed = build_backbone("none", frozen_stages=5).train()
    assert not any(p.requires_grad for p in closed.parameters())
    assert not any(bn.training for bn in _batchnorms(closed))
    head = TemporalHead("combine")
    model = ExpressionModel(closed, head).train()
    model(torch.randn(1, 2, 3, 64, 64)).sum().backward()
    _check_grads(model)
    assert count_parameters(model)["trainable"] == count_parameters(head)["total"]

    with pytest.raises(InputError, match="frozen_stages"):
        build_backbone("none", frozen_stages=6)


def test_parameter_counts() -> None:
    model = ExpressionModel(build_backbone("none"), TemporalHead("combine"))
    counts = count_parameters(model)
    tv = regnet_y_1_6gf()
    tv_backbone = sum(p.numel() for n, p in tv.named_parameters() if not n.startswith("fc."))
    attention = 888 * 384 + 128 * 888 + 888
    layer_norms = 2 * 2 * 888
    feed_forward = 888 * 512 + 512 + 512 * 888 + 888
    assert counts["backbone"] == tv_backbone
    assert counts["attention"] == attention
    assert counts["encoder"] == attention + layer_norms + feed_forward
    assert counts["head"] == 2664 * 8 + 8
    assert counts["total"] == sum(counts[k] for k in ("backbone", "attention", "encoder", "head"))
    stem_block1 = sum(p.numel() for m in model.backbone.frozen_modules() for p in m.parameters())
    assert counts["trainable"] == counts["total"] - stem_block1

    only_att = count_parameters(TemporalHead("only_att"))
    assert only_att["encoder"] == 0 and only_att["head"] == 1776 * 8 + 8


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_does_not_leak_into_real_frames(variant: str) -> None:
    torch.manual_seed(0)
    head = TemporalHead(variant).eval()
    features = torch.randn(2, 6, FEATURE_DIM)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    changed = features.clone()
    changed[1, 3:] = 100 * torch.randn(3, FEATURE_DIM)
    a, b = head(features, mask), head(changed, mask)
    torch.testing.assert_close(a[mask], b[mask])
    if variant != "no_att_trans":  # without the mask the padded frames would leak in
        assert not torch.allclose(head(features)[1, :3], head(changed)[1, :3])


def test_the_backbone_always_sees_every_slot_and_padding_never_reaches_real_frames() -> None:
    """Fixed shapes through the backbone (B * T frames, padding included); in eval mode what
    padded slots hold cannot change a real frame's logits."""
    torch.manual_seed(0)
    model = ExpressionModel(build_backbone("none"), TemporalHead(dropout=0.0))
    shapes = []
    model.backbone.register_forward_hook(lambda m, args, out: shapes.append(tuple(args[0].shape)))
    frames = torch.randn(2, 3, 3, 64, 64)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    changed = frames.clone()
    changed[1, 1:] = 5 * torch.randn(2, 3, 64, 64)
    model.train()(frames, mask)
    model.eval()
    torch.testing.assert_close(model(frames, mask)[mask], model(changed, mask)[mask])
    assert shapes == [(6, 3, 64, 64)] * 3


def test_channels_last_backbone_gives_the_same_logits() -> None:
    torch.manual_seed(0)
    model = ExpressionModel(build_backbone("none"), TemporalHead()).eval()
    frames = torch.randn(2, 3, 3, 64, 64)
    expected = model(frames)
    model.backbone.to(memory_format=torch.channels_last)
    model.channels_last = True
    torch.testing.assert_close(model(frames), expected, rtol=1e-4, atol=1e-4)


def test_fully_padded_window_is_finite() -> None:
    head = TemporalHead("combine").eval()
    out = head(torch.randn(2, 4, FEATURE_DIM), torch.zeros(2, 4, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_attention_matches_reference_math() -> None:
    torch.manual_seed(0)
    head = TemporalHead("only_att", dropout=0.0).eval()
    attn = head.attention
    x = torch.randn(1, 5, FEATURE_DIM)
    q, k, v = attn.to_qkv(x).chunk(3, dim=-1)
    outs = []
    for h in range(2):
        sl = slice(64 * h, 64 * (h + 1))
        weights = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / 8.0, dim=-1)
        outs.append(weights @ v[..., sl])
    expected = attn.to_out(torch.cat(outs, dim=-1))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_unknown_variant() -> None:
    with pytest.raises(InputError, match="variant"):
        TemporalHead("lstm")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file(tmp_path, suffix: str) -> None:
    torch.manual_seed(1)
    reference = regnet_y_1_6gf().state_dict()
    path = tmp_path / f"regnet{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
    else:
        torch.save(reference, path)
    backbone = build_backbone(str(path))
    loaded = backbone.state_dict()
    standardisation = {"feature_mean", "feature_std"}  # not in torchvision files: identity
    assert set(loaded) - standardisation == {k for k in reference if not k.startswith("fc.")}
    assert all(torch.equal(loaded[k], reference[k]) for k in set(loaded) - standardisation)
    assert not loaded["feature_mean"].any() and (loaded["feature_std"] == 1).all()
    # a RegNetFeatures state dict (no fc) loads too
    features_path = tmp_path / "features.pt"
    torch.save(loaded, features_path)
    again = build_backbone(str(features_path)).state_dict()
    assert all(torch.equal(again[k], loaded[k]) for k in loaded)


def test_local_weights_with_wrong_keys(tmp_path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(InputError, match="wrong.pth"):
        build_backbone(str(path))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="garbage.pt"):
        build_backbone(str(garbage))


def test_unknown_weights_name() -> None:
    with pytest.raises(InputError, match="imagenet"):
        build_backbone("imagenet_v9")


@pytest.mark.parametrize("name", ["imagenet", "imagenet_v1"])
def test_imagenet_download_failure(monkeypatch, name: str) -> None:
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(RegNet_Y_1_6GF_Weights, "get_state_dict", offline)
    with pytest.raises(InputError) as info:
        build_backbone(name)
    message = str(info.value)
    expected = (
        RegNet_Y_1_6GF_Weights.IMAGENET1K_V1
        if name.endswith("v1")
        else RegNet_Y_1_6GF_Weights.IMAGENET1K_V2
    )
    filename = expected.url.rsplit("/", 1)[-1]
    assert f"{torch.hub.get_dir()}/checkpoints/{filename}" in message
    assert "\n" not in message


def test_imagenet_weights_are_loaded(monkeypatch) -> None:
    torch.manual_seed(2)
    reference = regnet_y_1_6gf().state_dict()
    monkeypatch.setattr(RegNet_Y_1_6GF_Weights, "get_state_dict", lambda self, **kw: reference)
    backbone = build_backbone("imagenet")
    assert isinstance(backbone, RegNetFeatures)
    assert torch.equal(backbone.stem[0].weight, reference["stem.0.weight"])


def test_calibrated_backbone_gives_standardised_features_and_keeps_them_in_its_weights(
    tmp_path,
) -> None:
    from safetensors.torch import save_file

    from abaw_expr.model.backbone import calibrate_feature_scale

    torch.manual_seed(0)
    backbone = build_backbone("none", frozen_stages=5).eval()
    images = torch.randn(24, 3, 32, 32)
    with torch.inference_mode():
        raw = backbone(images)
    calibrate_feature_scale(backbone, images, batch_size=8)
    with torch.inference_mode():
        calibrated = backbone(images)
    assert calibrated.mean(0).abs().max() < 1e-4
    alive = raw.std(0) > 1e-6
    assert alive.sum() > 800
    assert torch.allclose(calibrated.std(0)[alive], torch.ones(int(alive.sum())), atol=1e-3)
    assert not calibrated[:, ~alive].any()  # dead ReLU channels stay 0, not blown up
    assert torch.allclose(calibrated * backbone.feature_std + backbone.feature_mean, raw, atol=1e-4)
    path = tmp_path / "calibrated.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    with torch.inference_mode():
        again = build_backbone(str(path), frozen_stages=5).eval()(images)
    assert torch.allclose(again, calibrated, atol=1e-5)


@pytest.mark.parametrize("variant", ["combine", "only_att", "only_trans"])
def test_relative_positions_train_and_keep_padding_out(variant: str) -> None:
    torch.manual_seed(0)
    head = TemporalHead(variant, positional="relative").train()
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    out = head(torch.randn(2, 8, FEATURE_DIM), mask)
    assert out.shape == (2, 8, NUM_CLASSES) and torch.isfinite(out).all()
    out[mask].square().mean().backward()
    _check_grads(head)
    slopes = [
        m.position_slopes for m in head.modules() if getattr(m, "position_slopes", None) is not None
    ]
    assert len(slopes) == BRANCHES[variant] - 1 and all(s.grad.abs().sum() > 0 for s in slopes)
    head.eval()
    features = torch.randn(2, 6, FEATURE_DIM)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    changed = features.clone()
    changed[1, 3:] = 100 * torch.randn(3, FEATURE_DIM)
    torch.testing.assert_close(head(features, mask)[mask], head(changed, mask)[mask])
    assert torch.isfinite(head(features, torch.zeros(2, 6, dtype=torch.bool))).all()


@pytest.mark.parametrize("positional", ["none", "relative"])
def test_only_relative_positions_see_frame_order(positional: str) -> None:
    """The paper's head treats a window as a bag of frames (permuting the frames permutes the
    logits); with relative positions a frame's logits depend on where the others sit."""
    torch.manual_seed(0)
    head = TemporalHead("combine", dropout=0.0, positional=positional).eval()
    features = torch.randn(1, 10, FEATURE_DIM)
    order = torch.tensor([0, 7, 2, 9, 4, 1, 6, 3, 8, 5])
    with torch.no_grad():
        permuted_out = head(features[:, order])
        out_permuted = head(features)[:, order]
    assert torch.allclose(permuted_out, out_permuted, atol=1e-5) == (positional == "none")


def test_relative_positions_are_opt_in() -> None:
    paper = count_parameters(TemporalHead("combine"))
    relative = count_parameters(TemporalHead("combine", positional="relative"))
    assert not any("position" in n for n, _ in TemporalHead("combine").named_parameters())
    assert relative["attention"] == paper["attention"] + 2  # one slope per head
    assert relative["encoder"] == paper["encoder"] + 2
    with pytest.raises(InputError, match="positional"):
        TemporalHead("combine", positional="sinusoidal")


def test_the_heads_dropout_on_a_cpu_is_dropout():
    """The head draws its CPU dropout mask with rand_like (faster than PyTorch's CPU dropout):
    it must zero a share p of the inputs, scale the rest by 1 / (1 - p), pass gradients
    through the kept ones only, and do nothing in eval mode."""
    from abaw_expr.model.temporal import TemporalHead

    head = TemporalHead("no_att_trans", dropout=0.5).train()
    x = torch.ones(64, 64, 888, requires_grad=True)
    torch.manual_seed(0)
    y = head._drop(x)
    zero = y == 0
    assert 0.49 < zero.float().mean() < 0.51
    assert torch.equal(y[~zero], torch.full_like(y[~zero], 2.0))
    y.sum().backward()
    assert torch.equal(x.grad, (~zero).float() * 2.0)
    torch.manual_seed(0)
    assert torch.equal(head._drop(x), y)  # seeded like the rest of training
    head.eval()
    assert head._drop(x) is x or torch.equal(head._drop(x), x)
    assert torch.equal(TemporalHead("no_att_trans", dropout=0.0).train()._drop(x), x)
