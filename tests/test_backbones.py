"""The frame encoder as a choice (issue 36): timm architectures beside the paper's RegNetY,
their weights (random and reproducible, or a state-dict file), the feature cache that records
them, and the commands that run them."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from abaw_expr.cli import main
from abaw_expr.errors import InputError
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.model import build_backbone
from abaw_expr.model.backbones import backbone_identity, make_backbone
from abaw_expr.model.timm_backbone import TimmFeatures

SMALL = "timm:mobilenetv3_small_050"  # 1024-wide, fast on 2 cores


def _extract(sample, out, *extra) -> int:
    return main(
        ["extract", "--images", str(sample / "cropped_aligned"), "--annotations",
         str(sample / "annotations"), "--out", str(out), "--workers", "0", "--engine", "eager",
         "--backbone", SMALL, "--backbone-weights", "none", *extra]
    )  # fmt: skip


def test_describe_model_reports_the_timm_width(capsys):
    argv = ["describe-model", "--backbone", "timm:efficientnet_b0", "--json", "--frames", "2"]
    assert main([*argv, "--batch", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feature_dim"] == 1280 and result["output"] == [1, 2, 8]
    assert result["backbone"] == "timm:efficientnet_b0"


def test_default_backbone_is_the_papers():
    model = make_backbone(weights="none", frozen_stages=2, seed=0)
    assert type(model).__name__ == "RegNetFeatures" and model.feature_dim == 888
    assert set(model.state_dict()) == set(build_backbone("none").state_dict())


def test_none_is_drawn_from_the_seed_and_leaves_the_global_generator_alone():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    one = make_backbone(SMALL, "none", seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    two = make_backbone(SMALL, "none", seed=3)
    other = make_backbone(SMALL, "none", seed=4)
    assert backbone_identity(SMALL, one) == backbone_identity(SMALL, two)
    assert backbone_identity(SMALL, one) != backbone_identity(SMALL, other)


def test_input_normalisation_and_size_come_from_timms_data_config():
    """A ViT pretrained on [-1, 1] inputs at 224 px gets exactly that from ImageNet-normalised
    112 px crops, resized inside the module's forward."""
    torch.manual_seed(0)
    model = TimmFeatures("timm:vit_tiny_patch16_224", frozen_stages=0).eval()
    assert model.input_size == (224, 224) and model.feature_dim == 192
    pixels = torch.rand(2, 3, 112, 112)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    imagenet = (pixels - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    expected = torch.nn.functional.interpolate(
        (pixels - 0.5) / 0.5, size=(224, 224), mode="bicubic", align_corners=False
    )
    with torch.no_grad():
        torch.testing.assert_close(model(imagenet), model.net(expected), atol=1e-4, rtol=1e-4)


def test_frozen_stages_keep_their_scale_for_timm():
    assert all(p.requires_grad for p in TimmFeatures(SMALL, 0).parameters())
    assert not any(p.requires_grad for p in TimmFeatures(SMALL, 5).parameters())
    half = TimmFeatures(SMALL, 2).train()
    assert not half.net.conv_stem.weight.requires_grad and half.net.conv_head.weight.requires_grad
    assert not half.net.bn1.training and half.net.conv_head.training  # frozen BN stays in eval


def test_a_state_dict_file_of_the_architecture_loads_and_a_regnet_one_is_refused(
    tmp_path, capsys, tiny_sample
):
    torch.manual_seed(1)
    source = timm.create_model("efficientnet_b0", num_classes=1000)  # with its classifier
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "b0.safetensors"))
    torch.save(state, tmp_path / "b0.pt")
    for name in ("b0.safetensors", "b0.pt"):
        loaded = make_backbone("timm:efficientnet_b0", str(tmp_path / name), frozen_stages=5)
        assert torch.equal(loaded.net.conv_stem.weight, source.conv_stem.weight)
    regnet = {k: v.contiguous() for k, v in build_backbone("none").state_dict().items()}
    save_file(regnet, str(tmp_path / "regnet.safetensors"))
    with pytest.raises(InputError, match="first mismatched key 'conv_stem.weight'"):
        make_backbone("timm:efficientnet_b0", str(tmp_path / "regnet.safetensors"))
    capsys.readouterr()
    code = main(
        ["extract", "--images", str(tiny_sample / "cropped_aligned"), "--annotations",
         str(tiny_sample / "annotations"), "--out", str(tmp_path / "c"), "--backbone",
         "timm:efficientnet_b0", "--backbone-weights", str(tmp_path / "regnet.safetensors")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "conv_stem.weight" in err, err


def test_random_extraction_is_reproducible_resumes_consistently_and_refuses_another_backbone(
    tiny_sample, tmp_path, capsys
):
    assert _extract(tiny_sample, tmp_path / "a") == 0
    assert _extract(tiny_sample, tmp_path / "b") == 0
    rows = (tmp_path / "a" / "Train_Set" / "features.f16").read_bytes()
    assert rows == (tmp_path / "b" / "Train_Set" / "features.f16").read_bytes()
    assert np.frombuffer(rows, np.float16).reshape(-1, 1024).any(1).sum() > 100
    # a killed extraction: the last video not done, its rows lost; the resume refills them
    split = tmp_path / "b" / "Train_Set"
    done = np.load(split / "done.npy")
    done[-1] = False
    np.save(split / "done.npy", done)
    features = np.memmap(split / "features.f16", np.float16, "r+").reshape(-1, 1024)
    features[-50:] = 0
    features.flush()
    del features
    assert _extract(tiny_sample, tmp_path / "b") == 0
    assert (split / "features.f16").read_bytes() == rows
    # another seed is another backbone: never mixed into the cache
    capsys.readouterr()
    assert _extract(tiny_sample, tmp_path / "b", "--seed", "5") == 2
    err = capsys.readouterr().err
    assert "holds features of backbone" in err and len(err.strip().splitlines()) == 1


def test_head_only_training_evaluate_and_predict_video_with_a_timm_backbone(
    tiny_sample, tmp_path, caplog
):
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert _extract(tiny_sample, cache) == 0
    train = ["train", "--features", str(cache), "--annotations", str(tiny_sample / "annotations"),
             "--backbone", SMALL, "--epochs", "1", "--set", "data.seq_len=8", "--set",
             "data.stride=8", "--set", "data.num_workers=0"]  # fmt: skip
    # other weights than the cache's (another draw): refused before anything is written
    other = ["--backbone-weights", "none", "--set", "model.backbone_seed=5"]
    assert main([*train, "--out", str(tmp_path / "bad"), *other]) == 2
    assert not (tmp_path / "bad").exists()
    assert main([*train, "--out", str(run), "--backbone-weights", "none", "--seed", "9"]) == 0
    model, config = load_model(run / "best.ckpt")
    assert config.model.backbone == SMALL and model.head.feature_dim == 1024
    assert backbone_identity(SMALL, model.backbone) == str(
        np.load(cache / "Train_Set" / "index.npz")["backbone"]
    )  # the checkpoint carries the backbone that made the cache
    out = tmp_path / "eval"
    assert main(
        ["evaluate", "--checkpoint", str(run / "best.ckpt"), "--images",
         str(tiny_sample / "cropped_aligned"), "--annotations",
         str(tiny_sample / "annotations" / "Validation_Set"), "--out", str(out), "--workers", "0"]
    ) == 0  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["frames"] > 0
    from abaw_expr.synthetic.video import write_synthetic_video

    write_synthetic_video(tmp_path / "v.mp4", 30, seed=1)
    with caplog.at_level(logging.WARNING):
        code = main(
            ["predict", "--checkpoint", str(run / "best.ckpt"), "--video",
             str(tmp_path / "v.mp4"), "--out", str(tmp_path / "pred")]
        )  # fmt: skip
    assert code == 0 and len((tmp_path / "pred" / "v.csv").read_text().splitlines()) == 31


def test_an_engine_that_cannot_take_the_backbone_warns_and_runs_eagerly(monkeypatch, caplog):
    from abaw_expr.inference import engine

    def refuse(backbone):
        raise RuntimeError("Unsupported: an operator the exporter does not know")

    monkeypatch.setattr(engine, "onnx_session", refuse)
    backbone = make_backbone(SMALL, "none", frozen_stages=5, seed=0)
    with caplog.at_level(logging.WARNING):
        runner = engine.BackboneRunner(backbone, "cpu", "onnxruntime")
    assert runner.engine == "eager" and "cannot take this backbone" in caplog.text
    images = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(runner(images), backbone.eval()(images), atol=1e-5, rtol=1e-5)
