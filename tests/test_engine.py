"""The backbone's inference engine: which one is chosen, and that it changes nothing."""

from __future__ import annotations

import copy
import logging
import sys

import pytest
import torch

from abaw_expr.errors import InputError
from abaw_expr.inference.engine import (
    COMPILE_MIN_FRAMES,
    CPU_CHUNK,
    BackboneRunner,
    choose_engine,
    chunk_size,
    engine_beside_faces,
)
from abaw_expr.model.backbone import build_backbone

from .conftest import BatchSizeDependent

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_choice_of_engine():
    assert engine_beside_faces("auto") == "eager"  # a face pass shares the cores: no compile
    assert engine_beside_faces("int8") == "int8"  # by name only
    assert choose_engine("int8", CPU, 10) == "int8"
    assert choose_engine("auto", CPU, 10**9) != "int8"
    assert engine_beside_faces("compile") == "compile"
    assert choose_engine("auto", CPU, COMPILE_MIN_FRAMES) == "compile"
    assert choose_engine("auto", CPU, None) == "compile"  # a server: compile once, keep it
    assert choose_engine("auto", CPU, COMPILE_MIN_FRAMES - 1) == "eager"  # not worth compiling
    assert choose_engine("compile", CPU, 10) == "compile"
    assert choose_engine("eager", CPU, 10**6) == "eager"
    assert choose_engine("onnxruntime", CPU, 10) == "onnxruntime"
    assert choose_engine("auto", CPU, 10**9) != "onnxruntime"  # only when asked by name
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
    compiled = runner(images)  # one chunk, padded: one graph, no recompile
    assert runner.engine == "compile" and compiled.shape == (7, 888)
    assert ((compiled - eager).abs().max() / eager.abs().max()).item() < 1e-3
    assert runner(images[:1]).shape == (1, 888) and len(runner(images[:0])) == 0


@pytest.mark.slow
def test_a_compiled_backbone_compiles_once_for_channels_last_and_contiguous_batches(backbone):
    if not hasattr(torch.compiler, "set_stance"):
        pytest.skip("torch.compiler.set_stance needs torch 2.6")
    torch._dynamo.reset()  # no graph of another test to match by chance
    crops = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    channels_last = crops.permute(0, 3, 1, 2).float()  # as the video path builds its batches
    runner = BackboneRunner(backbone, "cpu", "compile", batch_size=3)
    first = runner(channels_last)
    with torch.compiler.set_stance("fail_on_recompile"):  # a recompile would fall back to eager
        again = runner(channels_last.contiguous())
    assert runner.engine == "compile"
    torch.testing.assert_close(first, again)


def test_onnxruntime_matches_eager_within_1e_3_inside_inference_mode(backbone):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    images = torch.randn(5, 3, 32, 32)
    eager = BackboneRunner(copy.deepcopy(backbone), "cpu", "eager")(images)
    with torch.inference_mode():  # as extraction and the video path call it
        runner = BackboneRunner(backbone, "cpu", "onnxruntime")
        out = runner(images)
        assert runner(images[:0]).shape == (0, 888)
    assert runner.engine == "onnxruntime" and out.shape == (5, 888) and out.dtype == torch.float32
    assert ((out - eager).abs().max() / eager.abs().max()).item() < 1e-3
    # the batch and the image size are free: other sizes need no new session
    bigger = torch.randn(2, 3, 48, 48)
    torch.testing.assert_close(
        runner(bigger), BackboneRunner(copy.deepcopy(backbone), "cpu", "eager")(bigger),
        rtol=1e-3, atol=1e-3 * eager.abs().max().item(),
    )  # fmt: skip


def test_onnxruntime_missing_is_a_one_line_error_with_the_install_command(backbone, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"pip install onnx onnxruntime"):
        BackboneRunner(backbone, "cpu", "onnxruntime")


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


def test_every_image_meets_the_backbone_in_a_batch_of_one_size():
    assert chunk_size(CPU, 24) == CPU_CHUNK and chunk_size(CUDA, 24) == 24
    standin = BatchSizeDependent()
    runner = BackboneRunner(standin, CPU, "eager", batch_size=24)
    assert runner.chunk == CPU_CHUNK  # whatever the batch size asked for
    images = torch.randn(2 * runner.chunk + 5, 3, 8, 8)
    whole = runner(images)
    assert set(standin.sizes) == {runner.chunk}  # the short last chunk is padded
    for parts in (
        [5, len(images) - 5],
        [1] * 7 + [len(images) - 7],
        [runner.chunk + 3, 2, runner.chunk],
    ):
        pieces = torch.cat([runner(part) for part in images.split(parts)])
        assert torch.equal(pieces, whole)
    assert runner.loader_batch_size(1) == runner.chunk
    assert runner.loader_batch_size(runner.chunk + 1) == 2 * runner.chunk
