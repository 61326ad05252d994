"""``abaw-expr train``: one run of the paper's recipe with PyTorch Lightning.

A run folder holds ``config.yaml`` (every hyper-parameter, loadable with ``--config``),
``run.json`` (package version, git commit, command line, LR-finder choice, status, best
score), ``best.ckpt`` (best validation macro F1), ``last.ckpt`` (for ``--resume``) and the
CSV or TensorBoard logs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from abaw_expr import __version__
from abaw_expr.config import Config, save_config
from abaw_expr.data.datamodule import ExpressionDataModule
from abaw_expr.errors import InputError
from abaw_expr.inference.provenance import git_commit, training_record
from abaw_expr.tasks import EXPR
from abaw_expr.training.cache_check import check_features_match
from abaw_expr.training.module import ExpressionModule
from abaw_expr.writers import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

# Frozen backbone stages keep their BatchNorm in eval mode on purpose.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
# The run folder holds config.yaml and run.json before the first checkpoint, by design.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written like every file of ours: a temporary file beside the target, then a
    rename. (Lightning's own writer stages in the system temp folder, which may be another file
    system, where the final move is a copy that a kill can cut in half.)"""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


class StepSeed(L.Callback):
    """Reseeds every random generator before each training step from (seed, epoch, batch).

    With :class:`~abaw_expr.data.datamodule.EpochSampler` for the data, a step's dropout, order
    and augmentation depend on nothing before it (not on when Lightning happened to create a
    data iterator), so a run killed mid-epoch and resumed from ``last.ckpt`` ends exactly as
    the uninterrupted run does.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        seed = (self.seed * 1_000_003 + trainer.current_epoch * 100_003 + batch_idx) % 2**31
        L.seed_everything(seed, workers=True, verbose=False)


def data_tasks(annotations_dir: Path | str, features_dir: Path | str | None = None) -> list[str]:
    """The ABAW tracks the data hold, in ABAW's order: those whose labels a feature cache
    holds, or whose annotation folders are under ``annotations_dir``."""
    if features_dir is not None:
        from abaw_expr.data.feature_cache import cached_tasks, open_split_index

        return cached_tasks(open_split_index(Path(features_dir) / "Train_Set"))
    from abaw_expr.data.task_index import find_tasks

    found = find_tasks(annotations_dir)
    return [t for t in ("expr", "va", "au") if t in found]


def precision_for(config: Config) -> str:
    if config.trainer.precision != "auto":
        return config.trainer.precision
    if torch.cuda.is_available() and config.trainer.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _devices(value: str):
    if value == "auto":
        return "auto"
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return int(value) if value.lstrip("-").isdigit() else value


def is_global_zero() -> bool:
    """True in the process that owns the run folder (DDP launchers set these variables)."""
    env = os.environ
    return (
        env.get("RANK", "0") == "0"
        and env.get("LOCAL_RANK", "0") == "0"
        and env.get("NODE_RANK", "0") == "0"
    )


def prepare_run_dir(out_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Refuse to mix two runs in one folder; return the checkpoint to resume from, if any."""
    last = out_dir / "last.ckpt"
    if not is_global_zero():  # rank 0 has checked and prepared the folder
        return last if resume else None
    if resume:
        if not last.is_file():
            raise InputError("nothing to resume: no last.ckpt in this run folder", out_dir)
        return last
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(
            "already holds a run; pass --resume to continue it or --overwrite to replace it",
            out_dir,
        )
    if overwrite:
        for name in ("best.ckpt", "last.ckpt", "run.json", "config.yaml"):
            (out_dir / name).unlink(missing_ok=True)
    return None


def train(
    config: Config,
    annotations_dir: Path | str,
    out_dir: Path | str,
    images_dir: Path | str | None = None,
    features_dir: Path | str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    enable_progress_bar: bool = True,
    callbacks: list | None = None,
) -> dict:
    """Train; return ``run.json``'s content (``best_macro_f1``, ``best_checkpoint``, ...)."""
    out_dir = Path(out_dir)
    _check_logger(config)
    ckpt_path = prepare_run_dir(out_dir, resume, overwrite)
    if features_dir is not None:
        check_features_match(Path(features_dir), config)
    if features_dir is not None and config.model.frozen_stages != 5:
        log.info("training on cached features: the backbone is not trained (model.frozen_stages=5)")
        config.model.frozen_stages = 5
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)

    # What can fail on the user's input (label files, image folders, the backbone weights) is
    # tried before the run folder is written: a run that never started must not leave a
    # config.yaml that makes the corrected command ask for --resume or --overwrite.
    datamodule = ExpressionDataModule(
        config.data,
        annotations_dir,
        images_dir,
        features_dir,
        seed=config.trainer.seed,
        tasks=config.model.tasks,
    )
    if is_global_zero():
        datamodule.prepare_data()  # reads every label file (Lightning's own call is then free)
    module = ExpressionModule(config.to_dict())
    module.provenance = training_record(config, annotations_dir, images_dir, features_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    run_file = out_dir / "run.json"
    run = _start_run(config, run_file, resume, annotations_dir, images_dir, features_dir)
    trainer, checkpoint = _build_trainer(config, out_dir, module, enable_progress_bar, callbacks)
    if config.optim.auto_lr and ckpt_path is None:
        run["auto_lr"] = _find_lr(trainer, module, datamodule, config.optim.lr)
    started = time.time()
    try:
        trainer.fit(
            module,
            datamodule=datamodule,
            ckpt_path=ckpt_path,
            weights_only=True if ckpt_path else None,
        )
    except BaseException as err:
        if trainer.is_global_zero:  # say so in run.json; last.ckpt stays for --resume
            run.update(
                status=f"stopped: {type(err).__name__}", stopped=time.strftime("%Y-%m-%dT%H:%M:%S")
            )
            atomic_write_json(run_file, run)
        raise
    _finish_run(run, trainer, checkpoint, module, out_dir, started)
    if trainer.is_global_zero:
        atomic_write_json(run_file, run)
    return run


def _check_logger(config: Config) -> None:
    """Refuse a TensorBoard logger without its package, before anything is written."""
    if config.trainer.logger == "tensorboard":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise InputError(
                "trainer.logger=tensorboard needs the tensorboard package: pip install tensorboard"
            )


def _start_run(
    config: Config,
    run_file: Path,
    resume: bool,
    annotations_dir: Path | str,
    images_dir: Path | str | None,
    features_dir: Path | str | None,
) -> dict:
    """``run.json`` of a run that starts (or resumes: its earlier record, updated), written with
    ``config.yaml`` by the process that owns the run folder."""
    run = json.loads(run_file.read_text()) if resume and run_file.is_file() else {}
    run.update(
        version=__version__,
        git_commit=git_commit(),
        command=sys.argv,
        images=str(images_dir) if images_dir else None,
        features=str(features_dir) if features_dir else None,
        annotations=str(annotations_dir),
        status="running",
        started=run.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
    )
    if is_global_zero():
        save_config(config, run_file.parent / "config.yaml")
        atomic_write_json(run_file, run)
    return run


def _build_trainer(
    config: Config,
    out_dir: Path,
    module: ExpressionModule,
    enable_progress_bar: bool,
    callbacks: list | None,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Lightning trainer of a run, and its callback that keeps ``best.ckpt``."""
    t = config.trainer
    checkpoint = ModelCheckpoint(
        dirpath=out_dir,
        filename="best",
        monitor=module.monitor,
        mode="max",
        auto_insert_metric_name=False,
    )
    # Lightning's save_last only writes when a best checkpoint is written; --resume needs the
    # very last epoch, so last.ckpt is a checkpoint of its own, replaced every epoch.
    last = ModelCheckpoint(
        dirpath=out_dir, filename="last", save_top_k=1, enable_version_counter=False
    )
    logger = (
        TensorBoardLogger(out_dir, name="logs")  # logs/version_N: a resumed run adds a version
        if t.logger == "tensorboard"
        else CSVLogger(out_dir, name="logs")
    )
    trainer = L.Trainer(
        max_epochs=t.epochs,
        accelerator=t.accelerator,
        devices=_devices(t.devices),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision_for(config),
        deterministic=t.deterministic,
        benchmark=not t.deterministic,  # cuDNN picks its fastest kernels for the fixed shapes
        use_distributed_sampler=False,  # the datamodule shards without repeating windows
        logger=logger,
        callbacks=[
            checkpoint,
            *([last] if t.save_last else []),
            LearningRateMonitor("epoch"),
            StepSeed(config.trainer.seed),
            *(callbacks or []),
        ],
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        enable_progress_bar=enable_progress_bar,
        enable_model_summary=False,
        default_root_dir=out_dir,
        plugins=[AtomicCheckpointIO()],
    )
    return trainer, checkpoint


def _find_lr(
    trainer: L.Trainer,
    module: ExpressionModule,
    datamodule: ExpressionDataModule,
    lr: float,
) -> dict:
    """Run Lightning's learning-rate finder (it sets ``module.lr`` to its suggestion); return
    ``run.json``'s ``auto_lr``: the suggestion and the finder's curve, or the ``lr`` kept."""
    from lightning.pytorch.tuner import Tuner

    finder = Tuner(trainer).lr_find(module, datamodule=datamodule, attr_name="lr")
    if finder is not None and finder.suggestion() is not None:
        found = {
            "suggested": float(finder.suggestion()),
            "lrs": [float(x) for x in finder.results["lr"]],
            "losses": [float(x) for x in finder.results["loss"]],
        }
        log.info("learning-rate finder chose %.3g", finder.suggestion())
        return found
    log.warning("learning-rate finder gave no suggestion; keeping lr=%g", lr)
    return {"suggested": None, "kept": lr}


def _finish_run(
    run: dict,
    trainer: L.Trainer,
    checkpoint: ModelCheckpoint,
    module: ExpressionModule,
    out_dir: Path,
    started: float,
) -> None:
    """Records in ``run`` the end of a run that finished: its best score, epochs and time."""
    best = checkpoint.best_model_score
    best = float(best) if best is not None else None
    run.update(
        status="finished",
        tracks=list(module.tasks),  # run.json keeps the word users know
        monitor=module.monitor,
        # the paper's figure for the expression track alone; else the tracks' ABAW sum
        **({"best_macro_f1": best} if module.monitor == EXPR.score else {"best_score": best}),
        best_checkpoint=str(out_dir / "best.ckpt"),
        epochs=trainer.current_epoch,
        train_seconds=run.get("train_seconds", 0.0) + time.time() - started,
        lr=module.lr,
    )
