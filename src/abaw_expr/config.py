"""Every hyper-parameter of a run, as typed dataclasses; YAML in and out; command-line overrides.

Defaults are the paper's recipe (docs/training.md). A YAML file may set any subset;
unknown keys and values of the wrong type are errors naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from abaw_expr.errors import InputError, require_file


@dataclass
class DataConfig:
    seq_len: int = 64  # frames per sequence (paper)
    stride: int = 64  # step between training windows (authors' code)
    eval_stride: int = 32  # step at evaluation/prediction; overlapping windows are averaged
    split_at_gaps: bool = False  # True: no window spans a jump in frame numbers
    image_size: int = 112  # Aff-Wild2 cropped_aligned size
    batch_size: int = 16  # sequences per step (paper)
    num_workers: int = 4
    hflip: float = 0.5  # authors' augmentation
    color_jitter: list[float] = field(
        default_factory=lambda: [0.5, 0.25, 0.25]
    )  # brightness, contrast, saturation


# The temporal head's variants (model/temporal.py): here, so that the command line offers them
# without importing PyTorch.
VARIANTS: tuple[str, ...] = ("combine", "only_att", "only_trans", "no_att_trans")


@dataclass
class ModelConfig:
    variant: str = "combine"  # one of VARIANTS
    # Beyond the paper: the frame encoder, regnet_y_1_6gf (the paper's) or timm:<name> (issue 36)
    backbone: str = "regnet_y_1_6gf"
    backbone_weights: str = "imagenet"  # imagenet | pretrained | none | PATH to a state dict
    # backbone_weights=none: the seed its random weights are drawn with; -1 = trainer.seed
    backbone_seed: int = -1
    frozen_stages: int = 2  # of [stem, block1..block4]; 2 = stem + block1 (authors)
    heads: int = 2
    head_dim: int = 64
    ff_dim: int = 512
    dropout: float = 0.5
    # Beyond the paper, opt-in: "relative" = a learned distance bias in both attention branches
    positional: str = "none"
    # Beyond the paper, opt-in: attention to earlier frames only, for live prediction
    causal: bool = False
    # Beyond the paper: ABAW's tracks the head predicts, any of expr | va | au (issue 20)
    tasks: list[str] = field(default_factory=lambda: ["expr"])


@dataclass
class LossConfig:
    gamma: float = 2.0
    alpha: float = 0.9
    kl_weight: float = 0.2
    smoothing: float = 0.1
    # Trained together, each track's loss counts only its annotated frames, times its weight.
    expr_weight: float = 1.0
    va_weight: float = 1.0  # 1 - mean CCC of valence and arousal over the batch's frames
    va_mse_weight: float = 0.0  # optionally plus this times their mean squared error
    au_weight: float = 1.0  # binary cross-entropy, positives weighted by the training rates


@dataclass
class OptimConfig:
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.01
    auto_lr: bool = False  # run Lightning's learning-rate finder before training
    plateau_factor: float = 0.1  # ReduceLROnPlateau on validation macro F1
    plateau_patience: int = 3


@dataclass
class TrainerConfig:
    epochs: int = 30
    seed: int = 42
    deterministic: bool = False
    precision: str = "auto"  # auto = 16-mixed on CUDA, 32 on CPU; or any Lightning precision
    accelerator: str = "auto"
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | ...
    logger: str = "csv"  # csv | tensorboard
    log_every_n_steps: int = 10  # also how often the host reads the loss (NaN guard)
    limit_train_batches: float = 1.0
    save_last: bool = True  # last.ckpt every epoch, for --resume (the demo, never resumed: off)
    channels_last: bool = False  # backbone memory layout in training (benchmarks/gpu_train.py)
    compile: bool = False  # torch.compile the backbone for training (benchmarks/gpu_train.py)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check/convert ``value`` to the field's type; bools are not ints and ints are floats."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise InputError(f"{key}: expected a list, got {value!r}", source)
        return [_coerce(v, item_type, f"{key}[]", source) for v in value]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported annotation for {key}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"{key}: expected {annotation.__name__}, got {value!r}", source)


def _apply(section: Any, values: dict, prefix: str, source: str) -> None:
    hints = typing.get_type_hints(type(section))
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(hints)
            raise InputError(f"unknown key {prefix + str(key)!r} (known: {known})", source)
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(f"{prefix}{key}: expected a mapping", source)
            _apply(current, value, f"{prefix}{key}.", source)
        else:
            setattr(section, key, _coerce(value, hints[key], prefix + key, source))


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file (if any), then ``section.key=value`` overrides."""
    config = Config()
    if path is not None:
        path = require_file(path, "a YAML file")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            raise InputError(
                f"not valid YAML: {getattr(err, 'problem', err)}",
                path,
                mark.line + 1 if mark else None,
            ) from None
        if not isinstance(values, dict):
            raise InputError(
                "expected a mapping of sections (data, model, loss, optim, trainer)", path
            )
        _apply(config, values, "", str(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise InputError(f"override {item!r}: expected section.key=value, e.g. optim.lr=3e-4")
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            raise InputError(f"override {item!r}: the value is not valid YAML") from None
        nested: dict = {}
        cursor = nested
        *parents, leaf = key.split(".")
        for p in parents:
            cursor = cursor.setdefault(p, {})
        cursor[leaf] = value
        _apply(config, nested, "", "command line")
    validate(config)
    return config


def validate(config: Config) -> None:
    """Value checks that types alone do not catch."""
    checks = [
        (
            config.model.variant in VARIANTS,
            "model.variant must be combine, only_att, only_trans or no_att_trans",
        ),
        (0 <= config.model.frozen_stages <= 5, "model.frozen_stages must be 0..5"),
        (
            config.model.backbone.strip().lower() == "regnet_y_1_6gf"
            or config.model.backbone.strip().lower().startswith("timm:"),
            "model.backbone must be regnet_y_1_6gf or timm:<architecture>",
        ),
        (
            config.model.positional in ("none", "relative"),
            "model.positional must be none (the paper) or relative",
        ),
        (config.optim.optimizer in ("adam", "adamw"), "optim.optimizer must be adam or adamw"),
        (
            config.data.seq_len >= 1 and config.data.stride >= 1 and config.data.eval_stride >= 1,
            "data.seq_len and strides must be >= 1",
        ),
        (config.data.batch_size >= 1, "data.batch_size must be >= 1"),
        (
            len(config.data.color_jitter) == 3,
            "data.color_jitter is [brightness, contrast, saturation]",
        ),
        (config.optim.lr > 0, "optim.lr must be > 0"),
        (
            config.trainer.logger in ("csv", "tensorboard"),
            "trainer.logger must be csv or tensorboard",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def config_from_dict(values: dict) -> Config:
    config = Config()
    _apply(config, values, "", "checkpoint")
    return config


def save_config(config: Config, path: Path | str, extra: dict | None = None) -> None:
    from abaw_expr.writers import atomic_write_text

    payload = {**(extra or {}), **config.to_dict()}
    atomic_write_text(Path(path), yaml.safe_dump(payload, sort_keys=False))
