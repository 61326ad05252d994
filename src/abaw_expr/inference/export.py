"""``abaw-expr export``: the whole sequence model as ONNX, for ONNX Runtime and other engines.

The graph takes ``frames`` (B, T, 3, H, W), ImageNet-normalised float32, and ``mask`` (B, T)
bool (True = real frame), and returns ``logits`` (B, T, 8); B and T are dynamic. A checkpoint
of other ABAW tracks returns its tasks side by side instead, (B, T, 8 + 2 + 12) for all three
(expression logits, valence and arousal in [-1, 1], AU logits; the returned ``outputs`` says
where each sits). Unlike the
PyTorch model, the exported graph runs the backbone on padded slots too (their outputs are
never attended to), which keeps the graph free of data-dependent shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from abaw_expr.inference.checkpoint import load_model
from abaw_expr.model.temporal import task_slices
from abaw_expr.writers import atomic_write


class SequenceGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[0], frames.shape[1]
        features = self.backbone(frames.flatten(0, 1)).unflatten(0, (b, t))
        return self.head(features, mask)


def export_onnx(checkpoint: Path | str, out: Path | str, opset: int = 18) -> dict:
    """Write the checkpoint's model to ``out`` (atomically); return the input shapes used."""
    model, config = load_model(checkpoint)
    graph = SequenceGraph(model).eval()
    size, frames = config.data.image_size, min(config.data.seq_len, 16)
    example = (torch.randn(2, frames, 3, size, size), torch.ones(2, frames, dtype=torch.bool))

    def write(tmp: Path) -> None:
        torch.onnx.export(
            graph,
            example,
            str(tmp),
            input_names=["frames", "mask"],
            output_names=["logits"],
            dynamic_axes={
                "frames": {0: "batch", 1: "time"},
                "mask": {0: "batch", 1: "time"},
                "logits": {0: "batch", 1: "time"},
            },
            opset_version=opset,
            dynamo=False,
        )

    atomic_write(out, write)
    outputs = {t: [w.start, w.stop] for t, w in task_slices(config.model.tasks).items()}
    return {
        "image_size": size,
        "seq_len": config.data.seq_len,
        "opset": opset,
        "outputs": outputs,
    }
