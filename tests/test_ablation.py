"""abaw-expr ablate: variants over seeds, one table; bad arguments; resuming; compare's mean ± std."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from abaw_expr.cli import main
from abaw_expr.config import load_config
from abaw_expr.errors import InputError
from abaw_expr.report.compare import compare_runs
from abaw_expr.synthetic.context_probe import prepare_probe
from abaw_expr.synthetic.probe import ProbeSpec
from abaw_expr.training.ablation import ablate

SPEC = ProbeSpec(train_videos=4, val_videos=2, frames=96, segment=(24, 48), seed=2)
SETTINGS = ["data.seq_len=16", "data.stride=16", "data.eval_stride=8", "data.num_workers=0"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    return root / "cache", prepare_probe(root, SPEC)


def args(cache, out, *extra):
    features, weights = cache
    settings = [x for s in SETTINGS for x in ("--set", s)]
    return [
        "ablate", "--features", str(features), "--annotations", str(features),
        "--backbone-weights", str(weights), "--epochs", "1", "--out", str(out), *settings, *extra,
    ]  # fmt: skip


class Interrupted(Exception):
    pass


def test_interrupted_ablation_resumes_without_retraining(cache, tmp_path, capsys):
    out = tmp_path / "abl"
    features, weights = cache
    config = load_config(None, [*SETTINGS, f"model.backbone_weights={weights}", "trainer.epochs=1"])

    def stop_after_first(arm, seed, metrics):
        raise Interrupted

    with pytest.raises(Interrupted):
        ablate(config, features, out, ["no_att_trans", "combine+pos"], 2, features_dir=features,
               on_run=stop_after_first)  # fmt: skip
    first = out / "no_att_trans" / "seed42" / "best.ckpt"
    stamp = first.stat().st_mtime_ns
    assert main(args(cache, out, "--variants", "no_att_trans,combine", "--seeds", "2")) == 2
    assert "resume" in capsys.readouterr().err  # the folder exists: refused without --resume
    argv = args(cache, out, "--variants", "no_att_trans,combine+pos", "--seeds", "2", "--resume")
    assert main([*argv, "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert first.stat().st_mtime_ns == stamp  # the finished run was kept, not retrained
    assert set(table["arms"]) == {"no_att_trans", "combine+pos"}
    for arm, row in table["arms"].items():
        assert row["seeds"] == [42, 43]
        f1 = [
            json.loads((out / arm / f"seed{s}" / "eval" / "metrics.json").read_text())["macro_f1"]
            for s in (42, 43)
        ]
        assert row["macro_f1"] == f1
        assert row["macro_f1_mean"] == pytest.approx(np.mean(f1))
        assert row["macro_f1_std"] == pytest.approx(np.std(f1, ddof=1))
        assert set(row["per_class_f1"]["Neutral"]) == {"mean", "std"}
    config = json.loads((out / "combine+pos" / "seed43" / "run.json").read_text())
    assert (out / "combine+pos" / "seed43" / "config.yaml").read_text().count("relative") == 1
    assert config["status"] == "finished"
    assert "±" in (out / "ablation.txt").read_text()

    runs = sorted(out.glob("*/seed*"))
    text = compare_runs(runs, tmp_path / "compare.html")
    assert "mean ± std over seeds" in text
    pos = json.loads((out / "ablation.json").read_text())["arms"]["combine+pos"]
    mean, std = 100 * pos["macro_f1_mean"], 100 * pos["macro_f1_std"]
    assert f"{mean:.1f} ± {std:.1f}" in text
    assert "mean ± std over seeds" in (tmp_path / "compare.html").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--variants", "combine,lstm"], "unknown variant 'lstm'"),
        (["--seeds", "0"], "at least 1 seed"),
        (["--variants", "combine,combine"], "named twice"),
        (["--variants", "combine+lstm"], "unknown variant 'combine+lstm'"),
        (["--variants", "combine+deep"], "unknown variant 'combine+deep'"),
        (["--variants", "combine+pos+pos"], "unknown variant 'combine+pos+pos'"),
    ],
)
def test_bad_arguments_are_one_line_errors(cache, tmp_path, capsys, extra, message):
    assert main(args(cache, tmp_path / "new", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "new").exists()


def test_an_arm_is_a_variant_with_options_beyond_the_paper():
    from abaw_expr.config import Config
    from abaw_expr.training.ablation import arm_config, parse_arms

    assert parse_arms("combine, combine+pos,only_att+pos") == [
        "combine",
        "combine+pos",
        "only_att+pos",
    ]
    paper = arm_config(Config(), "combine", 3)
    assert paper.model == Config().model and paper.trainer.seed == 3  # the paper's model
    pos = arm_config(Config(), "only_att+pos", 0).model
    assert (pos.variant, pos.positional) == ("only_att", "relative")
    with pytest.raises(InputError, match="unknown variant 'combine\\+tcn'"):
        parse_arms("combine+tcn")  # measured and not kept (benchmarks/RESULTS.md, issue 23)


def test_existing_output_folder_is_refused(cache, tmp_path, capsys):
    (tmp_path / "old").mkdir()
    assert main(args(cache, tmp_path / "old", "--seeds", "1")) == 2
    err = capsys.readouterr().err
    assert "old: already exists" in err and err.count("\n") == 1


def test_ablation_from_images_trains_end_to_end_and_evaluates_every_frame(
    tiny_sample, tmp_path, capsys
):
    """--images: each run trains through the backbone on the face images and is evaluated
    from them, writing an ABAW prediction file per validation video."""
    from abaw_expr.data.annotations import read_labels

    out = tmp_path / "abl"
    settings = ["data.image_size=32", "data.seq_len=8", "data.stride=8", "data.eval_stride=4",
                "data.batch_size=4", "data.num_workers=0", "model.backbone_weights=none",
                "model.frozen_stages=3"]  # fmt: skip
    argv = [
        "ablate", "--images", str(tiny_sample / "cropped_aligned"),
        "--annotations", str(tiny_sample / "annotations"), "--variants", "combine",
        "--seeds", "2", "--seed", "5", "--epochs", "1", "--out", str(out), "--json",
        *[x for s in settings for x in ("--set", s)],
    ]  # fmt: skip
    assert main(argv) == 0
    row = json.loads(capsys.readouterr().out)["arms"]["combine"]
    assert row["seeds"] == [5, 6]
    val = sorted((tiny_sample / "annotations" / "Validation_Set").glob("*.txt"))
    for seed, f1 in zip((5, 6), row["macro_f1"], strict=True):
        run = out / "combine" / f"seed{seed}"
        assert json.loads((run / "run.json").read_text())["images"] == str(
            tiny_sample / "cropped_aligned"
        )
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        assert metrics["macro_f1"] == f1 and metrics["videos"] == len(val)
        for truth in val:  # a prediction for every annotated frame of each validation video
            predicted = read_labels(run / "eval" / "predictions" / truth.name)
            assert len(predicted) >= len(read_labels(truth))
    assert row["macro_f1_mean"] == pytest.approx(np.mean(row["macro_f1"]))
