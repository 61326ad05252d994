"""The int8 engine: ONNX Runtime's static quantisation of the backbone, calibrated on faces,
checked against float32 before use, kept in the cache, and chosen by ``auto`` only where the
CPU has an int8 fast path."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import abaw_expr.inference.int8 as int8
from abaw_expr.errors import InputError
from abaw_expr.inference.engine import BackboneRunner
from abaw_expr.model.backbone import build_backbone

pytest.importorskip("onnxruntime.quantization", reason="ONNX Runtime (dev extra)")


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("none", frozen_stages=5).eval()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ABAW_EXPR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "int8"


def faces(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images, normalised roughly as faces are (not white noise)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 14, 14, generator=g)
    return (torch.nn.functional.interpolate(small, size=112, mode="bilinear") - 0.45) / 0.25


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.double(), b.double())


def test_int8_agrees_with_float32_and_is_kept_in_the_cache(backbone, cache, monkeypatch):
    images = faces(40)
    runner = BackboneRunner(backbone, "cpu", "int8")
    features = runner(images)
    assert runner.engine == "int8" and runner._session is not None
    assert runner.int8_agreement.faces == 32 and runner.int8_agreement.ok
    reference = BackboneRunner(backbone, "cpu", "eager")(images)
    assert features.shape == reference.shape == (40, 888)
    assert cosine(features, reference).min() >= int8.MIN_COSINE
    assert not torch.equal(features, reference)  # it is another engine, not float32 again
    (graph,) = cache.glob("*.onnx")
    # A second runner on the same first faces reads the graph back instead of quantising.
    monkeypatch.setattr(int8, "quantise", lambda *a: pytest.fail("quantised again"))
    again = BackboneRunner(backbone, "cpu", "int8")
    torch.testing.assert_close(again(images), features, rtol=0, atol=0)
    assert list(cache.glob("*.onnx")) == [graph]


def test_given_calibration_faces_make_features_independent_of_the_batch(backbone, cache):
    calibration = faces(32, seed=1)
    runner = BackboneRunner(backbone, "cpu", "int8", calibration=calibration)
    images = faces(45, seed=2)
    whole = runner(images)
    parts = torch.cat([runner(images[:5]), runner(images[5:37]), runner(images[37:])])
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    # the graph is the one calibrated on the given faces, not on the first images seen
    other = BackboneRunner(backbone, "cpu", "int8")
    assert not torch.equal(other(images), whole)


def test_one_runner_called_from_two_threads_quantises_once(backbone, cache, monkeypatch):
    # predict --video: one runner, a batching thread per person; each thread's first call
    # used to quantise on its own first faces, and the last one to finish won
    calls = []
    quantise = int8.quantise

    def slow_quantise(*args):
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # the other thread's first call arrives meanwhile
        return quantise(*args)

    monkeypatch.setattr(int8, "quantise", slow_quantise)
    runner = BackboneRunner(backbone, "cpu", "int8")
    images = {name: faces(8, seed=seed) for seed, name in enumerate(("a", "b"))}
    out = {}
    threads = [
        threading.Thread(target=lambda n=n: out.__setitem__(n, runner(images[n])), name=n)
        for n in images
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and runner.engine == "int8"
    for name, features in out.items():  # both threads' faces through the one int8 graph
        torch.testing.assert_close(features, runner(images[name]), rtol=0, atol=0)


def test_disagreeing_int8_warns_and_stays_in_float32(backbone, cache, monkeypatch, caplog):
    monkeypatch.setattr(int8, "MIN_COSINE", 1.5)  # no int8 graph can pass this
    images = faces(8)
    runner = BackboneRunner(backbone, "cpu", "int8")
    with caplog.at_level(logging.WARNING):
        features = runner(images)
    assert runner.engine == "eager" and runner._session is None
    assert "int8 features disagree with float32" in caplog.text
    torch.testing.assert_close(features, BackboneRunner(backbone, "cpu", "eager")(images))


def test_the_cpu_flags_that_make_int8_the_fast_path(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse avx2 fma avx512f avx512bw\n")
    assert not int8.cpu_has_int8_path(info)  # AVX-512 without VNNI: int8 gains little
    info.write_text("flags\t\t: fpu sse avx2 fma avx512f avx512_vnni\n")
    assert int8.cpu_has_int8_path(info)
    info.write_text("flags\t\t: fpu avx2 avx_vnni\n")
    assert int8.cpu_has_int8_path(info)
    assert not int8.cpu_has_int8_path(tmp_path / "missing")
    monkeypatch.setattr(int8, "cpu_has_int8_path", lambda: True)
    assert int8.int8_available()
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    assert not int8.int8_available()  # auto never picks what is not installed
    with pytest.raises(InputError, match="pip install onnx onnxruntime"):
        int8._onnxruntime()


def test_calibration_faces_from_a_folder(tmp_path):
    folder = tmp_path / "faces"
    with pytest.raises(InputError, match="not a folder"):
        int8.read_calibration_faces(folder, 112)
    (folder / "a").mkdir(parents=True)
    with pytest.raises(InputError, match="no .jpg or .png"):
        int8.read_calibration_faces(folder, 112)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), np.uint8)).save(folder / "a" / f"{i}.png")
    (folder / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    loaded = int8.read_calibration_faces(folder, 112)
    assert loaded.shape == (3, 3, 112, 112) and loaded.dtype == torch.float32


def test_a_folder_of_calibration_faces_by_name_and_from_the_command_line(
    backbone, cache, tmp_path, capsys
):
    from abaw_expr.cli import main

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        pixels = rng.integers(60, 200, (8, 8, 3), np.uint8).repeat(14, 0).repeat(14, 1)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    images = faces(6, seed=3)
    by_name = BackboneRunner(backbone, "cpu", f"int8:{folder}")(images)
    given = BackboneRunner(
        backbone, "cpu", "int8", calibration=int8.read_calibration_faces(folder, 112)
    )(images)
    torch.testing.assert_close(by_name, given, rtol=0, atol=0)
    assert len(list(cache.glob("*.onnx"))) == 1  # one graph: the same faces
    ckpt = tmp_path / "missing.ckpt"
    args = ["--checkpoint", str(ckpt), "--video", str(folder), "--out", str(tmp_path / "o")]
    assert main(["predict", *args, "--calibration", str(folder)]) == 2
    assert "--calibration goes with --engine int8" in capsys.readouterr().err
