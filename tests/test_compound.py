"""Compound expressions (C-EXPR-DB, ABAW6 and ABAW7): the zero-shot rule on hand-made
probabilities, predict --compound for a video and a test list, score against labels in the same
layout (an independent scikit-learn macro F1), and bad files refused in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from abaw_expr.cli import main
from abaw_expr.data.annotations import list_label_files, read_labels
from abaw_expr.evaluation.compound_file import COMPOUND_HEADER, read_compound_file
from abaw_expr.inference.checkpoint import save_model_checkpoint
from abaw_expr.inference.compound import (
    COMPOUND_COLUMNS,
    COMPOUND_NAMES,
    compound_classes,
    compound_scores,
)
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.tasks import CLASS_NAMES
from abaw_expr.training.module import build_model

from .conftest import tiny_config

HEADER = (
    "image_location,Fearfully_Surprised,Happily_Surprised,Sadly_Surprised,"
    "Disgustedly_Surprised,Angrily_Surprised,Sadly_Fearful,Sadly_Angry"
)


def _probs(**named: float) -> np.ndarray:
    p = np.zeros(len(CLASS_NAMES))
    for name, value in named.items():
        p[CLASS_NAMES.index(name)] = value
    return p


def test_the_challenges_header_and_class_order():
    assert COMPOUND_HEADER == HEADER  # written out here, not derived, as the organisers give it
    assert COMPOUND_NAMES[0] == "Fearfully Surprised" and COMPOUND_NAMES[6] == "Sadly Angry"


@pytest.mark.parametrize(
    "probabilities, expected",
    [
        # each compound where its two classes lead
        (_probs(Fear=0.4, Surprise=0.4, Neutral=0.2), "Fearfully Surprised"),
        (_probs(Happiness=0.5, Surprise=0.3, Neutral=0.2), "Happily Surprised"),
        (_probs(Sadness=0.35, Surprise=0.5, Fear=0.15), "Sadly Surprised"),
        (_probs(Disgust=0.3, Surprise=0.3, Anger=0.2, Sadness=0.2), "Disgustedly Surprised"),
        (_probs(Anger=0.45, Surprise=0.3, Sadness=0.25), "Angrily Surprised"),
        (_probs(Sadness=0.4, Fear=0.4, Anger=0.2), "Sadly Fearful"),
        (_probs(Sadness=0.45, Anger=0.4, Surprise=0.15), "Sadly Angry"),
        # the pair, not the single largest class: Happiness leads, but Sadness + Anger is more
        (_probs(Happiness=0.4, Sadness=0.3, Anger=0.3), "Sadly Angry"),
        # Neutral and Other belong to no compound, however large
        (_probs(Neutral=0.9, Happiness=0.06, Surprise=0.04), "Happily Surprised"),
        (_probs(Other=0.8, Sadness=0.1, Fear=0.06, Anger=0.04), "Sadly Fearful"),
        # a tie goes to the first in the challenge's order (uniform: Fearfully Surprised)
        (np.full(8, 1 / 8), "Fearfully Surprised"),
    ],
)
def test_the_rule_picks_the_compound_whose_two_classes_are_likeliest(probabilities, expected):
    assert COMPOUND_NAMES[int(compound_classes(probabilities))] == expected


def test_a_compounds_score_is_the_mean_of_its_two_classes():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), size=50)
    scores = compound_scores(probs)
    c = {n: probs[:, i] for i, n in enumerate(CLASS_NAMES)}
    expected = np.stack(
        [
            (c["Fear"] + c["Surprise"]) / 2,
            (c["Happiness"] + c["Surprise"]) / 2,
            (c["Sadness"] + c["Surprise"]) / 2,
            (c["Disgust"] + c["Surprise"]) / 2,
            (c["Anger"] + c["Surprise"]) / 2,
            (c["Sadness"] + c["Fear"]) / 2,
            (c["Sadness"] + c["Anger"]) / 2,
        ],
        axis=1,
    )
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    np.testing.assert_array_equal(compound_classes(probs), expected.argmax(1))


def test_a_multi_task_checkpoints_expression_probabilities_are_its_expression_slice():
    from abaw_expr.inference.compound import expression_probabilities

    values = np.arange(3 * 22, dtype=np.float32).reshape(3, 22)  # expr 8, va 2, au 12
    np.testing.assert_array_equal(
        expression_probabilities(values, ("expr", "va", "au")), values[:, :8]
    )
    np.testing.assert_array_equal(expression_probabilities(values[:, :8], ("expr",)), values[:, :8])
    both = np.arange(3 * 10).reshape(3, 10)  # a checkpoint of expr and va
    np.testing.assert_array_equal(expression_probabilities(both, ("expr", "va")), both[:, :8])


# --- predict --compound -----------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_predict_a_test_list_writes_one_class_per_frame_of_every_video(
    trained_run, tiny_sample, tmp_path, capsys
):
    split = tiny_sample / "annotations" / "Validation_Set"
    counts = {f.stem: len(read_labels(f)) for f in list_label_files(split)}
    counts[min(counts)] += 7  # trailing frames without a face image are covered too
    listing = tmp_path / "test_set.txt"
    listing.write_text("".join(f"{name},{n}\n" for name, n in counts.items()))
    out = tmp_path / "out"
    code = main(
        ["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--images",
         str(tiny_sample / "cropped_aligned"), "--videos", str(listing), "--out", str(out),
         "--compound", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    lines = (out / "compound.csv").read_text().splitlines()
    assert lines[0] == HEADER
    rows = read_compound_file(out / "compound.csv")
    assert {v: sorted(frames) for v, frames in rows.items()} == {
        v: list(range(1, n + 1)) for v, n in counts.items()
    }
    assert len(lines) == 1 + sum(counts.values())
    assert {c for frames in rows.values() for c, _ in frames.values()} <= set(range(7))
    assert "compound.csv" in capsys.readouterr().out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_synthetic_video(path, 30, size=(320, 180), face_px=110, absent=((12, 16),), seed=4)
    return path


def test_predict_a_video_adds_compound_columns_and_the_submission_file(
    trained_run, clip, tmp_path, capsys
):
    out = tmp_path / "out"
    code = main(
        ["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--video", str(clip),
         "--out", str(out), "--compound", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    rows = _rows(out / "clip.csv")
    assert list(rows[0])[6:] == [
        *CLASS_NAMES, "compound", "compound_expression", *COMPOUND_COLUMNS
    ]  # fmt: skip
    probs = np.array([[float(r[c]) for c in CLASS_NAMES] for r in rows])
    scores = np.array([[float(r[c]) for c in COMPOUND_COLUMNS] for r in rows])
    np.testing.assert_allclose(scores, compound_scores(probs), atol=2e-5)  # 5 decimals
    compound = np.array([int(r["compound"]) for r in rows])
    np.testing.assert_array_equal(compound, scores.argmax(1))
    assert all(r["compound_expression"] == COMPOUND_NAMES[int(r["compound"])] for r in rows)
    for path in (out / "compound" / "clip.csv", out / "compound.csv"):
        assert path.read_text().splitlines()[0] == HEADER
        frames = read_compound_file(path)["clip"]
        assert sorted(frames) == list(range(1, 31))
        np.testing.assert_array_equal([frames[f][0] for f in range(1, 31)], compound)
    assert "compound expressions of 1 videos" in capsys.readouterr().out


def test_without_compound_the_video_csv_is_unchanged(trained_run, clip, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(trained_run / "best.ckpt"), "--video",
                 str(clip), "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    assert "compound" not in _rows(out / "clip.csv")[0]
    assert not (out / "compound").exists() and not (out / "compound.csv").exists()


@pytest.fixture(scope="module")
def va_au_checkpoint(tmp_path_factory) -> Path:
    config = tiny_config(model__tasks=["va", "au"])
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "va_au.ckpt"
    save_model_checkpoint(build_model(config), config, path)
    return path


@pytest.mark.parametrize("source", ["video", "images"])
def test_compound_is_refused_for_a_checkpoint_without_an_expression_head(
    va_au_checkpoint, clip, tiny_sample, tmp_path, capsys, source
):
    listing = tmp_path / "list.txt"
    listing.write_text("video_x,10\n")
    args = (
        ["--video", str(clip)]
        if source == "video"
        else ["--images", str(tiny_sample / "cropped_aligned"), "--videos", str(listing)]
    )
    out = tmp_path / "out"
    code = main(["predict", "--checkpoint", str(va_au_checkpoint), *args, "--out", str(out),
                 "--compound", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(va_au_checkpoint) in err and "expression head" in err and "va, au" in err
    assert not (out / "compound.csv").exists()


# --- score -------------------------------------------------------------------------------


def _write(path: Path, rows: list[tuple[str, int, object]], header: str = HEADER) -> Path:
    path.write_text(header + "\n" + "".join(f"{v}/{f:05d}.jpg,{c}\n" for v, f, c in rows))
    return path


def test_score_is_scikit_learns_macro_f1_over_the_seven_classes(tmp_path, capsys):
    rng = np.random.default_rng(7)
    frames = {"a": 40, "b": 25}
    truth = {v: rng.integers(0, 6, n) for v, n in frames.items()}  # class 6 never labelled
    predicted = {v: np.where(rng.random(n) < 0.6, truth[v], rng.integers(0, 7, n))
                 for v, n in frames.items()}  # fmt: skip
    labelled = {v: np.flatnonzero(rng.random(n) < 0.8) + 1 for v, n in frames.items()}
    labels = _write(
        tmp_path / "labels.csv",
        [(v, f, truth[v][f - 1]) for v in frames for f in labelled[v]],
    )
    # every frame predicted, in another order than the labels, with a video beside them
    rows = [(v, f, predicted[v][f - 1]) for v in reversed(frames) for f in range(1, frames[v] + 1)]
    predictions = _write(tmp_path / "pred.csv", [*rows, ("other", 1, 3)])
    code = main(["score", "--predictions", str(predictions), "--annotations", str(labels),
                 "--json"])  # fmt: skip
    assert code == 0
    import json

    result = json.loads(capsys.readouterr().out)
    y_true = np.concatenate([truth[v][labelled[v] - 1] for v in frames])
    y_pred = np.concatenate([predicted[v][labelled[v] - 1] for v in frames])
    expected = f1_score(y_true, y_pred, labels=range(7), average="macro", zero_division=0)
    assert result["task"] == "compound" and result["track"] == "compound"
    assert result["score"] == pytest.approx(expected, abs=1e-12)
    assert result["frames"] == len(y_true)
    per_class = f1_score(y_true, y_pred, labels=range(7), average=None, zero_division=0)
    np.testing.assert_allclose(list(result["per_class_f1"].values()), per_class, atol=1e-12)


BAD = {
    "wrong header": (HEADER.replace("Sadly_Angry", "Angrily_Sad"), "v/00001.jpg,1\n", 1),
    "class 7": (HEADER, "v/00001.jpg,1\nv/00002.jpg,7\n", 3),
    "short row": (HEADER, "v/00001.jpg,1\nv/00002.jpg\n", 3),
    "empty class": (HEADER, "v/00001.jpg,\n", 2),
    "duplicate row": (HEADER, "v/00001.jpg,1\nv/00002.jpg,2\nv/00001.jpg,3\n", 4),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("which", ["predictions", "labels"])
def test_a_bad_compound_file_exits_2_naming_the_file_and_line(tmp_path, capsys, case, which):
    header, body, line = BAD[case]
    good = _write(tmp_path / "good.csv", [("v", 1, 1), ("v", 2, 2)])
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + body)
    predictions, labels = (bad, good) if which == "predictions" else (good, bad)
    code = main(["score", "--predictions", str(predictions), "--annotations", str(labels)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{bad}:{line}:" in err


def test_a_labelled_frame_without_a_prediction_exits_2_naming_it(tmp_path, capsys):
    labels = _write(tmp_path / "labels.csv", [("v", 1, 1), ("v", 2, 2), ("v", 3, 0)])
    predictions = _write(tmp_path / "pred.csv", [("v", 1, 1), ("v", 3, 0)])
    code = main(["score", "--predictions", str(predictions), "--annotations", str(labels)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(predictions) in err and "v/00002.jpg" in err and f"{labels} line 3" in err


def test_compound_predictions_against_a_split_folder_are_refused(tiny_sample, tmp_path, capsys):
    predictions = _write(tmp_path / "pred.csv", [("v", 1, 1)])
    split = tiny_sample / "annotations" / "Validation_Set"
    code = main(["score", "--predictions", str(predictions), "--annotations", str(split)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "same layout" in err and len(err.splitlines()) == 1
