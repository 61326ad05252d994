"""The command line: JSON outputs, one-line errors, and the steps chained as a user would."""

from __future__ import annotations

import json

import pytest

from abaw_expr.cli import main
from abaw_expr.config import load_config
from abaw_expr.model import count_parameters
from abaw_expr.model.module import build_model

from .conftest import tiny_config


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object, nothing else
    return json.loads(out)


@pytest.mark.parametrize("variant", ["combine", "no_att_trans"])
def test_describe_model(capsys, variant):
    result = run_json(capsys, ["describe-model", "--variant", variant, "--frames", "8", "--json"])
    assert result["output"] == [2, 8, 8]
    assert result["feature_dim"] == 888
    config = tiny_config(model__variant=variant)
    expected = count_parameters(build_model(config))
    assert result["parameters"] == {
        k: expected[k] for k in ("backbone", "attention", "encoder", "head", "total")
    }
    parts = result["parameters"]
    assert (
        parts["total"] == parts["backbone"] + parts["attention"] + parts["encoder"] + parts["head"]
    )
    assert (parts["attention"] > 0) == (variant == "combine")


def test_sample_and_stats(capsys, tmp_path):
    summary = run_json(
        capsys,
        [
            "sample",
            "--out",
            str(tmp_path / "s"),
            "--videos",
            "2",
            "--val-videos",
            "1",
            "--frames",
            "100",
            "--json",
        ],
    )
    assert summary["seed"] == 0
    stats = run_json(
        capsys,
        [
            "stats",
            "--images",
            str(tmp_path / "s" / "cropped_aligned"),
            "--annotations",
            str(tmp_path / "s" / "annotations"),
            "--json",
        ],
    )
    assert set(stats) == {"Train_Set", "Validation_Set"}
    assert stats["Train_Set"]["videos"] == 2 and stats["Validation_Set"]["videos"] == 1
    for split in stats.values():
        assert split["usable"] <= split["annotated"] <= split["frames"]
        assert sum(split["per_class"].values()) == split["usable"]


def test_user_errors_are_one_line_without_traceback(capsys, tmp_path):
    bad = tmp_path / "ann" / "Train_Set"
    bad.mkdir(parents=True)
    (bad / "v.txt").write_text(
        "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n9\n"
    )
    (tmp_path / "ann" / "Validation_Set").mkdir()
    (tmp_path / "img").mkdir()
    code = main(
        ["stats", "--images", str(tmp_path / "img"), "--annotations", str(tmp_path / "ann")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad / 'v.txt'}:3" in err and "label 9" in err


def test_train_refuses_unknown_config_key(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("optim:\n  lr: 0.01\n  momentum: 0.9\n")
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--images",
            str(tmp_path),
            "--annotations",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "optim.momentum" in err and str(config) in err


def test_resume_from_the_command_line_keeps_the_runs_settings(tiny_sample, tmp_path):
    out = tmp_path / "run"
    common = [
        "train",
        "--images",
        str(tiny_sample / "cropped_aligned"),
        "--annotations",
        str(tiny_sample / "annotations"),
        "--out",
        str(out),
    ]
    tiny = [
        "--backbone-weights",
        "none",
        "--epochs",
        "1",
        "--set",
        "data.image_size=32",
        "--set",
        "data.seq_len=8",
        "--set",
        "data.num_workers=0",
        "--set",
        "model.frozen_stages=3",
    ]
    assert main(common + tiny) == 0
    assert main(common + ["--resume", "--epochs", "2"]) == 0
    saved = load_config(out / "config.yaml")
    assert saved.data.image_size == 32 and saved.data.seq_len == 8 and saved.trainer.epochs == 2
    assert json.loads((out / "run.json").read_text())["epochs"] == 2
    # train leaves its report; evaluate of the run's checkpoint adds the evaluation to one
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "35.87" in html
    split = tiny_sample / "annotations" / "Validation_Set"
    evaluated = [
        "evaluate", "--checkpoint", str(out / "best.ckpt"), "--images",
        str(tiny_sample / "cropped_aligned"), "--annotations", str(split), "--out",
        str(tmp_path / "eval"), "--workers", "0",
    ]  # fmt: skip
    assert main(evaluated) == 0
    assert "Confusion" in (tmp_path / "eval" / "report.html").read_text()
    assert (
        main(
            [
                "report",
                str(out),
                "--eval",
                str(tmp_path / "eval"),
                "--out",
                str(tmp_path / "r.html"),
            ]
        )
        == 0
    )
    assert (tmp_path / "r.html").is_file()
