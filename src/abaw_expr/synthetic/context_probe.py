"""The temporal probe run end to end: a probe cache, a backbone file for it, seeded ablation.

The probe's data are in :mod:`abaw_expr.synthetic.probe`; this module adds what training on it
needs (a saved backbone whose id the cache records, as ``train --features`` requires) and
the config it is trained with: the paper's recipe (loss, AdamW, ReduceLROnPlateau, windows
of 64, batch 16) with training windows every 32 frames and 3 epochs (the probe is learnt in
one or two; more only overfit and cost time).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from abaw_expr.config import Config
from abaw_expr.data.feature_cache import backbone_id
from abaw_expr.synthetic.probe import ProbeSpec, read_probe_masks, write_probe

SUBSETS = ("uninformative", "uninformative_in_expression")


def prepare_probe(root: Path | str, spec: ProbeSpec) -> Path:
    """Write ``root/backbone.safetensors`` and the probe cache ``root/cache``; return the weights.

    The backbone is a seeded random RegNetY-1.6GF: only its identity matters (checkpoints
    carry it), its weights never touch the probe's features.
    """
    import torch
    from safetensors.torch import save_file

    from abaw_expr.model.backbone import build_backbone

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    weights = root / "backbone.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        backbone = build_backbone("none", frozen_stages=5)
        save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    write_probe(root / "cache", spec, backbone_id(str(weights)))
    return weights


def probe_config(
    weights: Path | str, epochs: int = 3, seq_len: int = 64, stride: int = 32
) -> Config:
    config = Config()
    config.model.backbone_weights = str(weights)
    config.data.seq_len = seq_len
    config.data.stride = stride
    config.data.eval_stride = max(seq_len // 2, 1)
    config.data.num_workers = 0
    config.trainer.epochs = epochs
    config.trainer.seed = 0
    config.trainer.log_every_n_steps = 1
    return config


def run_probe(
    root: Path | str,
    spec: ProbeSpec,
    arms: Sequence[str],
    seeds: int,
    epochs: int = 3,
    resume: bool = False,
    on_run=None,
) -> dict:
    """The probe's ablation table (see :func:`abaw_expr.training.ablation.ablate`), with macro F1 and
    accuracy on the uninformative frames (and on those inside expression segments)."""
    from abaw_expr.training.ablation import ablate

    root = Path(root)
    weights = root / "backbone.safetensors"
    if not resume:
        weights = prepare_probe(root, spec)
    cache = root / "cache"
    masks = read_probe_masks(cache / "Validation_Set")
    return ablate(
        probe_config(weights, epochs),
        cache,
        root / "ablation",
        arms,
        seeds,
        features_dir=cache,
        resume=resume,
        subsets={name: masks[name] for name in SUBSETS},
        on_run=on_run,
    )
