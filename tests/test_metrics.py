"""The ABAW metric against scikit-learn, prediction-file scoring, and the stats/score CLI."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score

from abaw_expr.cli import main
from abaw_expr.errors import InputError
from abaw_expr.evaluation.metrics import confusion_matrix, expression_scores, f1_from_confusion
from abaw_expr.evaluation.scoring import score_predictions
from abaw_expr.tasks import CLASS_NAMES, HEADER, NUM_CLASSES

LABELS = list(range(NUM_CLASSES))


def sk_macro_f1(y, p) -> float:
    y, p = np.asarray(y), np.asarray(p)
    keep = y >= 0
    return float(f1_score(y[keep], p[keep], average="macro", labels=LABELS, zero_division=0))


def _random(seed: int, n: int = 3000, absent: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    present = [c for c in LABELS if c not in absent]
    y = rng.choice(present, size=n)
    # mostly right, as a model would be, so the per-class F1s are not all alike
    p = np.where(rng.random(n) < 0.4, y, rng.choice(present, size=n))
    y[rng.random(n) < 0.15] = -1  # unannotated frames
    return y.astype(np.int64), p.astype(np.int64)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ABAW_EXPR_CACHE", str(folder))
    return folder


# --- the metric ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_macro_f1_matches_sklearn(seed):
    y, p = _random(seed)
    scores = expression_scores(y, p)
    assert scores["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-9)
    per_class = f1_score(y[y >= 0], p[y >= 0], average=None, labels=LABELS, zero_division=0)
    assert list(scores["per_class_f1"]) == list(CLASS_NAMES)
    np.testing.assert_allclose(list(scores["per_class_f1"].values()), per_class, atol=1e-9)
    assert scores["frames"] == int((y >= 0).sum())


@pytest.mark.parametrize("seed", range(4))
def test_unannotated_frames_are_excluded(seed):
    y, p = _random(seed)
    garbage = p.copy()
    garbage[y < 0] = (garbage[y < 0] + 3) % NUM_CLASSES  # change only unannotated frames
    assert expression_scores(y, garbage) == expression_scores(y, p)
    keep = y >= 0
    assert expression_scores(y[keep], p[keep]) == expression_scores(y, p)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("absent", [(3,), (2, 5), (0, 7)])
def test_absent_class_counts_as_zero(seed, absent):
    y, p = _random(seed, absent=absent)
    assert not np.isin(absent, y).any() and not np.isin(absent, p).any()
    scores = expression_scores(y, p)
    assert scores["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-9)
    for c in absent:
        assert scores["per_class_f1"][CLASS_NAMES[c]] == 0.0
    # the mean is over all 8 classes, not over the classes present
    present = [f for n, f in scores["per_class_f1"].items() if CLASS_NAMES.index(n) not in absent]
    assert scores["macro_f1"] == pytest.approx(sum(present) / NUM_CLASSES, abs=1e-12)


def test_class_only_predicted_or_only_true():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 3, 1, 1, 0])  # 3 predicted but never true; 2 true but never predicted
    assert expression_scores(y, p)["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-12)


def test_perfect_and_edge_cases():
    y = np.arange(NUM_CLASSES).repeat(5)
    assert expression_scores(y, y)["macro_f1"] == pytest.approx(1.0)
    single = np.zeros(10, dtype=np.int64)
    assert expression_scores(single, single)["macro_f1"] == pytest.approx(1 / NUM_CLASSES)
    empty = expression_scores(np.array([-1, -1]), np.array([0, 1]))
    assert empty["macro_f1"] == 0.0 and empty["frames"] == 0


@pytest.mark.parametrize("seed", range(5))
def test_confusion_matrix_matches_sklearn(seed):
    y, p = _random(seed, absent=(4,) if seed % 2 else ())
    keep = y >= 0
    expected = sk_confusion_matrix(y[keep], p[keep], labels=LABELS)
    cm = confusion_matrix(y, p)
    assert cm.shape == (NUM_CLASSES, NUM_CLASSES)
    np.testing.assert_array_equal(cm, expected)
    assert expression_scores(y, p)["confusion_matrix"] == expected.tolist()
    assert f1_from_confusion(cm).mean() == pytest.approx(sk_macro_f1(y, p), abs=1e-9)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0, 8], "predictions must be"),
        ([0, 1], [-1, 1], "predictions must be"),
        ([0, 8], [0, 1], "labels must be"),
        ([0, -2], [0, 1], "labels must be"),
        ([0, 1], [0], "differ"),
    ],
    ids=["pred-8", "pred--1", "label-8", "label--2", "lengths"],
)
def test_confusion_matrix_refuses_out_of_range(y, p, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(y), np.array(p))


def test_any_prediction_is_fine_on_unannotated_frames():
    cm = confusion_matrix(np.array([-1, 2]), np.array([-1, 2]))
    assert cm.sum() == 1 and cm[2, 2] == 1


# --- scoring prediction files -------------------------------------------------------------


def _write(path, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "".join(f"{int(v)}\n" for v in values), encoding="utf-8")


@pytest.fixture
def scored(tmp_path):
    """Three annotated videos and matching prediction files; returns (split, preds, y, p)."""
    split, preds = tmp_path / "Validation_Set", tmp_path / "predictions"
    ys, ps = [], []
    for i, n in enumerate([500, 321, 777]):
        y, p = _random(100 + i, n=n)
        _write(split / f"video{i}.txt", y)
        _write(preds / f"video{i}.txt", p)
        ys.append(y)
        ps.append(p)
    return split, preds, np.concatenate(ys), np.concatenate(ps)


def test_score_predictions_matches_sklearn(scored):
    split, preds, y, p = scored
    scores = score_predictions(preds, split)
    assert scores["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-9)
    assert scores["videos"] == 3
    assert scores["frames"] == int((y >= 0).sum())


def test_missing_prediction_file(scored):
    split, preds, _, _ = scored
    (preds / "video1.txt").unlink()
    with pytest.raises(InputError, match="video1"):
        score_predictions(preds, split)


def test_short_prediction_file(scored):
    split, preds, _, _ = scored
    lines = (preds / "video2.txt").read_text().splitlines()
    (preds / "video2.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="video2") as info:
        score_predictions(preds, split)
    assert "776 predictions for 777" in str(info.value)


def test_long_prediction_file_warns(scored, caplog):
    split, preds, y, p = scored
    with open(preds / "video0.txt", "a") as handle:
        handle.write("3\n3\n3\n")
    with caplog.at_level(logging.WARNING, logger="abaw_expr.evaluation.scoring"):
        scores = score_predictions(preds, split)
    assert scores["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-9)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "video0" in warnings[0] and "ignored" in warnings[0]


@pytest.mark.parametrize("bad", ["-1", "8"])
def test_prediction_out_of_range(scored, bad):
    split, preds, _, p = scored
    values = [str(v) for v in p[:321]]
    values[10] = bad
    path = preds / "video1.txt"
    path.write_text(HEADER + "\n" + "\n".join(values) + "\n")
    with pytest.raises(InputError) as info:
        score_predictions(preds, split)
    assert f"{path}:12:" in str(info.value)


def test_prediction_folder_missing(scored, tmp_path):
    split, _, _, _ = scored
    with pytest.raises(InputError, match="no such folder"):
        score_predictions(tmp_path / "nope", split)


def test_extra_prediction_files_are_ignored(scored):
    split, preds, y, p = scored
    _write(preds / "unrelated.txt", [1, 2, 3])
    assert score_predictions(preds, split)["macro_f1"] == pytest.approx(sk_macro_f1(y, p))


# --- the command line ---------------------------------------------------------------------


def test_cli_score_json(scored, capsys):
    split, preds, y, p = scored
    code = main(["score", "--predictions", str(preds), "--annotations", str(split), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert isinstance(result, dict)
    assert result["macro_f1"] == pytest.approx(sk_macro_f1(y, p), abs=1e-9)
    assert result["videos"] == 3


def test_cli_score_text(scored, capsys):
    split, preds, y, p = scored
    assert main(["score", "--predictions", str(preds), "--annotations", str(split)]) == 0
    out = capsys.readouterr().out
    assert f"macro F1 {sk_macro_f1(y, p):.4f}" in out


def _stats_tree(root):
    images, annotations = root / "cropped_aligned", root / "annotations"
    rng = np.random.default_rng(7)
    expected = {}
    for split, n_videos in (("Train_Set", 3), ("Validation_Set", 2)):
        frames = annotated = usable = 0
        per_class = dict.fromkeys(CLASS_NAMES, 0)
        for v in range(n_videos):
            name = f"{split[:1]}{v}"
            n = int(rng.integers(20, 60))
            y = rng.integers(-1, NUM_CLASSES, size=n)
            _write(annotations / split / f"{name}.txt", y)
            folder = images / name
            folder.mkdir(parents=True)
            with_image = rng.random(n + 5) < 0.8  # a few images past the annotation
            for f in np.flatnonzero(with_image):
                (folder / f"{f + 1:05d}.jpg").write_bytes(b"")
            frames += n
            annotated += int((y >= 0).sum())
            for label, has in zip(y.tolist(), with_image[:n].tolist(), strict=True):
                if label >= 0 and has:
                    usable += 1
                    per_class[CLASS_NAMES[label]] += 1
        expected[split] = {
            "videos": n_videos,
            "frames": frames,
            "annotated": annotated,
            "usable": usable,
            "per_class": per_class,
        }
    return images, annotations, expected


def test_cli_stats_json(tmp_path, capsys, cache_dir):
    images, annotations, expected = _stats_tree(tmp_path)
    code = main(["stats", "--images", str(images), "--annotations", str(annotations), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    assert json.loads(out) == expected
    assert list(cache_dir.glob("*.npz"))  # the cache went where ABAW_EXPR_CACHE says


def test_cli_stats_text(tmp_path, capsys):
    images, annotations, expected = _stats_tree(tmp_path)
    assert main(["stats", "--images", str(images), "--annotations", str(annotations)]) == 0
    out = capsys.readouterr().out
    t = expected["Train_Set"]
    assert f"Train_Set: 3 videos, {t['frames']} frames" in out


def _assert_one_line_error(capsys, code, *needles):
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "error" in lines[0]
    for needle in needles:
        assert needle in lines[0]


def test_cli_score_bad_input(scored, capsys):
    split, preds, _, _ = scored
    bad = preds / "video0.txt"
    bad.write_text(HEADER + "\n0\nabc\n")
    code = main(["score", "--predictions", str(preds), "--annotations", str(split), "--json"])
    _assert_one_line_error(capsys, code, f"{bad}:3:")


def test_cli_score_missing_prediction(scored, capsys):
    split, preds, _, _ = scored
    (preds / "video2.txt").unlink()
    code = main(["score", "--predictions", str(preds), "--annotations", str(split)])
    _assert_one_line_error(capsys, code, "video2")


def test_cli_stats_bad_input(tmp_path, capsys):
    images, annotations, _ = _stats_tree(tmp_path)
    (annotations / "Train_Set" / "T1.txt").write_text("Neutral,Anger\n0\n")
    code = main(["stats", "--images", str(images), "--annotations", str(annotations), "--json"])
    _assert_one_line_error(capsys, code, "T1.txt:1:")


def test_cli_stats_missing_folder(tmp_path, capsys):
    code = main(
        ["stats", "--images", str(tmp_path), "--annotations", str(tmp_path / "nope"), "--json"]
    )
    _assert_one_line_error(capsys, code, "nope")
