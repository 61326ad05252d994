"""Training, checkpoints, resume, evaluation and prediction on a tiny generated data set."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from abaw_expr.config import Config, load_config
from abaw_expr.data.annotations import read_labels
from abaw_expr.errors import InputError
from abaw_expr.evaluation.evaluate import evaluate, predict_test_set
from abaw_expr.evaluation.scoring import score_predictions
from abaw_expr.evaluation.submission import parse_submission
from abaw_expr.inference.checkpoint import load_model, read_checkpoint
from abaw_expr.inference.settings import InferenceSettings
from abaw_expr.training.loop import train
from abaw_expr.training.module import ExpressionModule

from .conftest import tiny_config


def test_optimisation_lowers_the_loss():
    torch.manual_seed(0)
    config = Config()
    config.model.backbone_weights = "none"
    module = ExpressionModule(config.to_dict())
    features = torch.randn(4, 16, 888)
    labels = torch.randint(0, 8, (4, 16))
    mask = torch.ones(4, 16, dtype=torch.bool)
    optimizer = module.configure_optimizers()["optimizer"]
    module.train()
    losses = []
    for _ in range(30):
        loss, _ = module.loss(module(features, mask), {"labels": labels}, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_compile_and_channels_last_settings_keep_checkpoints_plain(
    tiny_sample, tmp_path, monkeypatch
):
    """trainer.compile compiles the backbone in place (its state-dict keys unchanged, so the
    checkpoint loads without compiling); trainer.channels_last trains in that layout."""
    compiled = []

    def record(fn, *args, **kwargs):  # the real compile takes minutes on 2 cores
        compiled.append(getattr(fn, "__self__", None))
        return fn

    monkeypatch.setattr(torch, "compile", record)
    out = tmp_path / "run"
    config = tiny_config(trainer__compile=True, trainer__channels_last=True)
    train(config, tiny_sample / "annotations", out, images_dir=tiny_sample / "cropped_aligned",
          enable_progress_bar=False)  # fmt: skip
    assert len(compiled) == 1 and type(compiled[0]).__name__ == "RegNetFeatures"
    state = torch.load(out / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    stem = state["model.backbone.stem.0.weight"]
    assert stem.is_contiguous(memory_format=torch.channels_last)
    model, _ = load_model(out / "last.ckpt")
    assert torch.isfinite(model(torch.rand(1, 8, 3, 32, 32))).all()


def test_the_optimizer_is_fused_where_parameters_live_on_a_cpu_or_cuda():
    config = Config()
    config.model.backbone_weights = "none"
    module = ExpressionModule(config.to_dict())
    assert module.configure_optimizers()["optimizer"].defaults.get("fused")  # CPU: fused
    module.to("meta")  # a device without a fused AdamW: the default implementation
    assert not module.configure_optimizers()["optimizer"].defaults.get("fused")


def test_train_writes_a_complete_run(trained_run):
    run = json.loads((trained_run / "run.json").read_text())
    assert run["status"] == "finished"
    assert 0.0 <= run["best_macro_f1"] <= 1.0
    assert run["git_commit"] and run["version"]
    assert (trained_run / "best.ckpt").is_file() and (trained_run / "last.ckpt").is_file()
    config = load_config(trained_run / "config.yaml")
    assert config.data.image_size == 32 and config.model.variant == "combine"
    assert list((trained_run / "logs").glob("version_*/metrics.csv"))


def test_checkpoint_loads_safely_and_predicts(trained_run):
    model, config = load_model(trained_run / "best.ckpt")
    assert config.data.seq_len == 8
    with torch.inference_mode():
        out = model(torch.randn(1, 8, 3, 32, 32))
    assert out.shape == (1, 8, 8) and torch.isfinite(out).all()


def test_a_loaded_model_holds_exactly_the_checkpoints_tensors(trained_run, tmp_path):
    """Every tensor of the loaded model comes from the file, the optional standardisation
    defaults to the identity, and a checkpoint that lacks a weight is refused."""
    checkpoint = read_checkpoint(trained_run / "best.ckpt")
    model, _ = load_model(trained_run / "best.ckpt")
    saved = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    frozen = [p.requires_grad for p in model.backbone.stem.parameters()]
    assert frozen and not any(frozen)  # the frozen stages stay frozen

    older = dict(checkpoint)
    older["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if "feature_" not in k}
    torch.save(older, tmp_path / "older.ckpt")
    model, _ = load_model(tmp_path / "older.ckpt")
    assert not model.backbone.feature_mean.any() and (model.backbone.feature_std == 1).all()

    broken = dict(checkpoint)
    broken["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if "classifier.weight" not in k
    }
    torch.save(broken, tmp_path / "broken.ckpt")
    with pytest.raises(InputError, match="does not fit the model"):
        load_model(tmp_path / "broken.ckpt")


def test_refuses_to_mix_runs(trained_run, tiny_sample):
    with pytest.raises(InputError, match="already holds a run"):
        train(
            tiny_config(),
            tiny_sample / "annotations",
            trained_run,
            images_dir=tiny_sample / "cropped_aligned",
        )


def test_resume_continues_from_last_checkpoint(tiny_sample, tmp_path):
    out = tmp_path / "run"
    images, annotations = tiny_sample / "cropped_aligned", tiny_sample / "annotations"
    train(tiny_config(), annotations, out, images_dir=images, enable_progress_bar=False)
    first = read_checkpoint(out / "last.ckpt")
    assert first["epoch"] == 0
    run = train(
        tiny_config(trainer__epochs=2),
        annotations,
        out,
        images_dir=images,
        resume=True,
        enable_progress_bar=False,
    )
    second = read_checkpoint(out / "last.ckpt")
    assert second["global_step"] == 2 * first["global_step"]  # one more epoch, not two
    assert run["epochs"] == 2
    assert (
        len(list((out / "logs").glob("version_*/metrics.csv"))) == 2
    )  # the first run's log is kept


def test_evaluate_equals_score_on_its_files(trained_run, tiny_sample, tmp_path):
    split = tiny_sample / "annotations" / "Validation_Set"
    metrics = evaluate(
        trained_run / "best.ckpt",
        tiny_sample / "cropped_aligned",
        split,
        tmp_path,
        InferenceSettings(num_workers=0),
    )
    scored = score_predictions(tmp_path / "predictions", split)
    assert metrics["macro_f1"] == pytest.approx(scored["macro_f1"], abs=1e-12)
    assert metrics["frames"] == scored["frames"]
    for label_file in split.glob("*.txt"):
        predicted = read_labels(tmp_path / "predictions" / label_file.name, allow_unannotated=False)
        assert len(predicted) == len(read_labels(label_file))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["macro_f1"] == metrics["macro_f1"] and len(saved["confusion_matrix"]) == 8


def test_predict_writes_every_frame_of_a_test_list(trained_run, tiny_sample, tmp_path):
    videos = sorted(p.stem for p in (tiny_sample / "annotations" / "Validation_Set").glob("*.txt"))
    list_file = tmp_path / "test.txt"
    list_file.write_text(f"{videos[0]},120\n{videos[1]}\n")
    n = predict_test_set(
        trained_run / "best.ckpt",
        tiny_sample / "cropped_aligned",
        list_file,
        tmp_path / "out",
        InferenceSettings(num_workers=0),
    )
    assert n == 2
    assert (
        len(read_labels(tmp_path / "out" / f"{videos[0]}.txt")) == 120
    )  # beyond the last image: filled
    # the later editions' one-file layout holds the same labels
    track, rows = parse_submission((tmp_path / "out" / "expr.csv").read_text())
    assert track.name == "expr" and sorted(rows) == videos[:2]
    for video in videos[:2]:
        labels = read_labels(tmp_path / "out" / f"{video}.txt")
        assert [int(rows[video][i + 1]) for i in range(len(labels))] == labels.tolist()


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def test_malicious_checkpoint_is_refused_and_not_executed(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {}, "hyper_parameters": _Exploit()}, handle)
    with pytest.raises(InputError, match="refused"):
        read_checkpoint(path)
    assert not _Exploit.marker.exists()


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tiny_sample, tmp_path):
    script = Path(__file__).with_name("ddp_train.py")
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_sample), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["epochs"] == ranks[1]["epochs"] == 2
    assert ranks[0]["param_checksum"] == pytest.approx(ranks[1]["param_checksum"], rel=1e-6)
    assert ranks[0]["val_macro_f1"] == pytest.approx(ranks[1]["val_macro_f1"], abs=1e-9)
    assert np.isfinite(ranks[0]["param_checksum"])
    # Each process trains on its own disjoint share of every epoch's windows, equally long.
    size = ranks[0]["train_set_size"]
    for epoch in ("0", "1"):
        shares = [{tuple(w) for w in r["train_windows"][epoch]} for r in ranks]
        assert len(shares[0]) == len(shares[1]) == size // 2
        assert not shares[0] & shares[1]
    # Validation counted every frame once: one process on the same weights gets the same F1.
    import lightning as L

    from abaw_expr.data.datamodule import ExpressionDataModule

    checkpoint = torch.load(out / "run" / "last.ckpt", weights_only=True)
    module = ExpressionModule(checkpoint["hyper_parameters"]["config"])
    module.load_state_dict(checkpoint["state_dict"])
    config = module.config
    dm = ExpressionDataModule(
        config.data, tiny_sample / "annotations", tiny_sample / "cropped_aligned"
    )
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False,
    )  # fmt: skip
    (single,) = trainer.validate(module, datamodule=dm, verbose=False)
    assert single["val/macro_f1"] == pytest.approx(ranks[0]["val_macro_f1"], abs=1e-6)
    # ... with a model that predicts several classes (set so on purpose: see ddp_train.py), so
    # that a frame counted twice or not at all would move the F1; and the frames, counted.
    assert ranks[0]["val_predicted_classes"] >= 2 and 0.05 < single["val/macro_f1"] < 1
    labelled = sum(
        int(((item["labels"] >= 0) & item["mask"]).sum())
        for item in map(dm.val_set.__getitem__, range(len(dm.val_set)))
    )
    assert ranks[0]["val_frames"] == ranks[1]["val_frames"] == labelled


class _Crash(Exception):
    pass


class _CrashAfterFirstEpoch(__import__("lightning").Callback):
    def on_train_epoch_end(self, trainer, module):
        raise _Crash


def test_a_crashed_run_says_so_and_keeps_its_checkpoints(tiny_sample, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(
            tiny_config(trainer__epochs=3),
            tiny_sample / "annotations",
            out,
            images_dir=tiny_sample / "cropped_aligned",
            enable_progress_bar=False,
            callbacks=[_CrashAfterFirstEpoch()],
        )
    assert json.loads((out / "run.json").read_text())["status"] == "stopped: _Crash"
