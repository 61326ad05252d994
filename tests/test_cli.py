"""The command line: JSON outputs, one-line errors, and the steps chained as a user would."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from abaw_expr.cli import build_parser, main
from abaw_expr.config import load_config
from abaw_expr.model import count_parameters
from abaw_expr.training.module import build_model

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


def test_help_lists_every_command_under_what_a_user_is_doing(capsys, monkeypatch):
    """``abaw-expr --help`` lists the commands in sections by task, not in one block: a
    command registered without a group (or a group's line naming no command) fails here."""
    import argparse

    from abaw_expr.cli import GROUPS, build_parser

    monkeypatch.setenv("COLUMNS", "100")
    [subparsers] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    sections: dict[str, list[str]] = {}
    title = None
    for line in capsys.readouterr().out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            sections[title] = []
        elif title and line.startswith("  ") and line[2] != " ":
            sections[title].append(line.split()[0])  # "predict --video ..." -> predict
    listed = {title: names for title, names in sections.items() if title != "options"}
    assert list(listed) == [group.title for group in GROUPS]
    assert all(listed.values()), listed
    in_a_group = {name for names in listed.values() for name in names}
    assert in_a_group == set(subparsers.choices)
    assert {"sample", "train", "evaluate", "predict", "serve", "demo"} <= in_a_group


def test_variant_choices_are_the_models(capsys):
    from abaw_expr.cli import build_parser
    from abaw_expr.model import VARIANTS

    parser = build_parser()
    for variant in VARIANTS:
        assert parser.parse_args(["describe-model", "--variant", variant]).variant == variant
    with pytest.raises(SystemExit):
        parser.parse_args(["describe-model", "--variant", "nope"])
    assert parser.parse_args(["ablate", "--annotations", "a", "--out", "o"]).variants == ",".join(
        VARIANTS
    )


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


# Each command that reads files or folders, given one that is not there: the command line,
# and the argument the error must name. HERE is a folder (holding c.ckpt), NOWHERE a missing
# path, OUT where the command would write.
MISSING_INPUT = {
    "stats": ("stats --images NOWHERE --annotations NOWHERE", "--images"),
    "score": ("score --predictions NOWHERE --annotations NOWHERE", "--predictions"),
    "train": ("train --images NOWHERE --annotations NOWHERE --out OUT", "--images"),
    "train-features": ("train --features NOWHERE --annotations HERE --out OUT", "--features"),
    "train-annotations": ("train --images HERE --annotations NOWHERE --out OUT", "--annotations"),
    "train-weights": (
        "train --images HERE --annotations HERE --out OUT --backbone-weights NOWHERE",
        "--backbone-weights",
    ),
    "train-config": (
        "train --config NOWHERE --images HERE --annotations HERE --out OUT",
        "--config",
    ),
    "train-resume": ("train --images HERE --annotations HERE --out NOWHERE --resume", "--resume"),
    "extract": ("extract --images NOWHERE --annotations NOWHERE --out OUT", "--images"),
    "evaluate": (
        "evaluate --checkpoint NOWHERE --images HERE --annotations HERE --out OUT",
        "--checkpoint",
    ),
    "predict-video": ("predict --checkpoint HERE/c.ckpt --video NOWHERE --out OUT", "--video"),
    "predict-images": (
        "predict --checkpoint HERE/c.ckpt --images HERE --videos NOWHERE --out OUT",
        "--videos",
    ),
    "preprocess": ("preprocess --video NOWHERE --out OUT", "--video"),
    "serve": ("serve --checkpoint NOWHERE", "--checkpoint"),
    "report": ("report NOWHERE --out OUT", "RUN"),
    "report-eval": ("report HERE --eval NOWHERE --out OUT", "--eval"),
    "ablate": ("ablate --images NOWHERE --annotations NOWHERE --out OUT", "--images"),
    "compare": ("compare HERE NOWHERE --html OUT", "RUNS"),
    "export": ("export --checkpoint NOWHERE --out OUT", "--checkpoint"),
}


def _fill(command: str, root: Path) -> list[str]:
    """``command``'s arguments, with HERE, NOWHERE and OUT made paths under ``root``."""
    here = root / "here"
    here.mkdir(exist_ok=True)
    (here / "c.ckpt").write_bytes(b"")
    names = {"HERE": here, "NOWHERE": root / "nowhere", "OUT": root / "out"}
    filled = []
    for arg in command.split():
        head, _, tail = arg.partition("/")
        filled.append(str(names[head] / tail) if head in names else arg)
    return filled


@pytest.mark.parametrize("case", MISSING_INPUT, ids=list(MISSING_INPUT))
def test_a_missing_input_is_named_before_anything_is_written(capsys, tmp_path, case):
    command, flag = MISSING_INPUT[case]
    code = main(_fill(command, tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(tmp_path / "nowhere") in err and flag in err, err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]  # nothing else written


def test_a_missing_input_fails_without_importing_torch(tmp_path):
    """In a fresh process, as a user runs it: the check comes before PyTorch (seconds to
    import) and before any model is built or weights downloaded. What makes it fast is
    asserted, not a time (speed figures live in benchmarks/)."""
    script = (
        "import json, sys\n"
        "from abaw_expr.cli import main\n"
        "for case, argv in json.loads(sys.argv[1]).items():\n"
        "    assert main(argv) == 2, case\n"
        "heavy = [m for m in ('torch', 'lightning', 'dlib') if m in sys.modules]\n"
        "print(json.dumps({'imported': heavy}))\n"
    )
    cases = {case: _fill(command, tmp_path) for case, (command, _) in MISSING_INPUT.items()}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(cases)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["imported"] == []
    assert not (tmp_path / "out").exists()


def test_score_takes_one_prediction_file(capsys, tmp_path):
    """``score --predictions`` is a folder of <video>.txt or one image_location,... file: the
    input check lets the file through to the scorer, which reads it."""
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "v.txt").write_text(
        "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n4\n"
    )
    (tmp_path / "pred.txt").write_text(
        "image_location,Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n"
        "v/00001.jpg,0\nv/00002.jpg,4\n"
    )
    argv = ["score", "--predictions", str(tmp_path / "pred.txt")]
    assert main([*argv, "--annotations", str(tmp_path / "ann"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macro_f1"] > 0


def test_python_m_runs_the_command():
    """``python -m abaw_expr.cli`` (how benchmarks/video.py starts the command) is the command."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "abaw_expr.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Evaluate and submit:" in done.stdout, done.stderr


def _options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    """``command --option`` (or ``command NAME``) of every argument of every command whose
    help is missing or empty; ``--help`` itself is argparse's own."""
    missing = []
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in [("abaw-expr", parser), *sub.choices.items()]:
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                label = action.option_strings[-1] if action.option_strings else action.dest
                missing.append(f"{name} {label}")
    return missing


def test_every_option_of_every_command_has_a_help_line():
    """``abaw-expr COMMAND --help`` explains every option it lists."""
    parser = build_parser()
    assert _options_without_help(parser) == []
    # the walk sees every command and every option (a walk that saw none would pass)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "predict", "serve", "describe", "demo"} <= set(sub.choices)
    assert "--checkpoint" in sub.choices["serve"]._option_string_actions
