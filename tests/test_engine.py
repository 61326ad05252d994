"""The backbone's inference engine: which one is chosen, and that it changes nothing."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from abaw_expr.errors import InputError
from abaw_expr.model.backbone import build_backbone
from abaw_expr.model.engine import COMPILE_MIN_FRAMES, BackboneRunner, choose_engine

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_choice_of_engine():
    assert choose_engine("auto", CPU, COMPILE_MIN_FRAMES) == "compile"
    assert choose_engine("auto", CPU, None) == "compile"  # a server: compile once, keep it
    assert choose_engine("auto", CPU, COMPILE_MIN_FRAMES - 1) == "eager"  # not worth compiling
    assert choose_engine("compile", CPU, 10) == "compile"
    assert choose_engine("eager", CPU, 10**6) == "eager"
    assert choose_engine("compile", CUDA, 10**6) == "eager"  # CUDA: eager under bf16 autocast
    with pytest.raises(InputError, match="unknown engine 'tensorrt'"):
        choose_engine("tensorrt", CPU, 10)


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("none", frozen_stages=5).eval()


@pytest.mark.slow
def test_compiled_backbone_matches_eager_within_1e_3_with_a_padded_last_batch(backbone):
    images = torch.randn(7, 3, 32, 32)
    eager = BackboneRunner(backbone, "cpu", "eager")(images)
    runner = BackboneRunner(backbone, "cpu", "compile", batch_size=4)
    compiled = runner(images)  # batches of 4 and 3 (padded to 4): one graph, no recompile
    assert runner.engine == "compile" and compiled.shape == (7, 888)
    assert ((compiled - eager).abs().max() / eager.abs().max()).item() < 1e-3
    assert runner(images[:1]).shape == (1, 888) and len(runner(images[:0])) == 0


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(backbone, monkeypatch, caplog):
    def broken(module, **kwargs):
        def run(x):
            raise RuntimeError("InductorError: no C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    images = torch.randn(3, 3, 32, 32)
    runner = BackboneRunner(backbone, "cpu", "compile", batch_size=2)
    with caplog.at_level(logging.WARNING):
        out = runner(images)
    assert runner.engine == "eager" and "no C++ compiler" in caplog.text
    torch.testing.assert_close(out, BackboneRunner(backbone, "cpu", "eager")(images))


def test_eager_on_a_cpu_runs_channels_last_at_the_same_output(backbone):
    images = torch.randn(5, 3, 32, 32)
    with torch.inference_mode():
        reference = backbone(images)  # the plain NCHW module
    runner = BackboneRunner(copy.deepcopy(backbone), "cpu", "eager")
    assert runner.channels_last
    assert runner.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    out = runner(images)
    assert ((out - reference).abs().max() / reference.abs().max()).item() < 1e-4
