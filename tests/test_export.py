"""ONNX export of the whole sequence model: ONNX Runtime agrees with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abaw_expr.cli import main
from abaw_expr.inference.checkpoint import load_model
from abaw_expr.training.loop import train

from .conftest import tiny_config

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")


@pytest.fixture(params=["none", "relative"])
def run_dir(request, trained_run, tiny_sample, tmp_path):
    """The paper's model, and the opt-in relative positions (beyond the paper)."""
    if request.param == "none":
        return trained_run
    config = tiny_config(model__positional="relative", trainer__limit_train_batches=2.0)
    images = tiny_sample / "cropped_aligned"
    train(config, tiny_sample / "annotations", tmp_path / "run", images, enable_progress_bar=False)
    return tmp_path / "run"


def test_onnx_runtime_matches_pytorch_with_other_batch_and_length(run_dir, tmp_path):
    trained_run = run_dir
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(trained_run / "best.ckpt"), "--out", str(out)]) == 0
    model, config = load_model(trained_run / "best.ckpt")
    size = config.data.image_size
    torch.manual_seed(0)
    frames = torch.randn(3, 11, 3, size, size)  # B and T other than the export's example
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[2, 7:] = False  # padding
    with torch.inference_mode():
        expected = model(frames, mask).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"frames": frames.numpy(), "mask": mask.numpy()})
    real = mask.numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-3, atol=1e-4)
