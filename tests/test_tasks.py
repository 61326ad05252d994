"""ABAW's valence-arousal and action-unit tracks: strict file reading and exact scoring.

The scores are checked against formulas written differently from the library's (CCC from
Pearson's r and standard deviations, AU F1 from scikit-learn) on files with a BOM, Windows
line endings, unannotated rows and prediction files longer than the annotations, in both
submission layouts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from abaw_expr.cli import main
from abaw_expr.data.annotations import format_task_file, parse_task_file, read_task_file
from abaw_expr.errors import InputError
from abaw_expr.evaluation.metrics import abaw_sum, concordance
from abaw_expr.evaluation.scoring import score_predictions
from abaw_expr.evaluation.submission import format_submission, parse_submission
from abaw_expr.tasks import AU, AU_NAMES, EXPR, VA, annotated


def reference_ccc(x, y) -> float:
    """Lin's CCC written as 2 r sx sy / (sx^2 + sy^2 + (mx - my)^2), population moments."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    r = np.corrcoef(x, y)[0, 1]
    sx, sy = x.std(), y.std()
    return float(2 * r * sx * sy / (sx**2 + sy**2 + (x.mean() - y.mean()) ** 2))


def va_video(rng, n):
    t = np.linspace(0, 6, n)
    truth = np.stack([np.sin(t + rng.random()), 0.6 * np.cos(1.7 * t)], 1)
    truth = np.clip(truth + rng.normal(0, 0.1, truth.shape), -1, 1).round(3)
    predicted = np.clip(0.7 * truth + rng.normal(0.05, 0.25, truth.shape), -1, 1).round(4)
    truth[rng.random(n) < 0.2] = -5  # unannotated frames
    return truth, predicted


def au_video(rng, n):
    rates = np.linspace(0.05, 0.6, len(AU_NAMES))
    truth = (rng.random((n, len(AU_NAMES))) < rates).astype(np.int8)
    truth[:, AU_NAMES.index("AU15")] = 0  # never annotated positive ...
    flip = rng.random(truth.shape) < 0.25
    predicted = np.where(flip, 1 - truth, truth).astype(np.int8)
    predicted[:, AU_NAMES.index("AU15")] = 0  # ... nor predicted: F1 0 (0/0), as ABAW's
    truth[rng.random(n) < 0.15] = -1
    return truth, predicted


def write(path, task, values, *, bom=False, crlf=False, extra_rows=None):
    text = format_task_file(task, values)
    if extra_rows is not None:
        text += format_task_file(task, extra_rows).split("\n", 1)[1]
    if crlf:
        text = text.replace("\n", "\r\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((("\ufeff" if bom else "") + text).encode())


@pytest.fixture
def va_split(tmp_path):
    rng = np.random.default_rng(1)
    truths, predictions = {}, {}
    for i, n in enumerate((300, 211, 157)):
        truth, predicted = va_video(rng, n)
        name = f"video{i}" if i != 2 else "video2_left"
        write(tmp_path / "ann" / f"{name}.txt", VA, truth, bom=i == 0, crlf=i == 1)
        extra = predicted[:5] if i == 2 else None  # a prediction file longer than its labels
        write(tmp_path / "pred" / f"{name}.txt", VA, predicted, crlf=i == 0, extra_rows=extra)
        truths[name], predictions[name] = truth, predicted
    return tmp_path, truths, predictions


@pytest.fixture
def au_split(tmp_path):
    rng = np.random.default_rng(2)
    truths, predictions = {}, {}
    for i, n in enumerate((400, 333)):
        truth, predicted = au_video(rng, n)
        write(tmp_path / "ann" / f"v{i}.txt", AU, truth, bom=i == 1, crlf=True)
        write(tmp_path / "pred" / f"v{i}.txt", AU, predicted, extra_rows=predicted[:3])
        truths[f"v{i}"], predictions[f"v{i}"] = truth, predicted
    return tmp_path, truths, predictions


def pooled(truths, predictions, task):
    truth = np.concatenate([truths[v] for v in sorted(truths)])
    predicted = np.concatenate([predictions[v] for v in sorted(truths)])
    keep = annotated(task, truth)
    return truth[keep], predicted[keep]


# --- reading -------------------------------------------------------------------------------


def test_each_task_is_told_by_its_header():
    assert parse_task_file(EXPR.header + "\n3\n-1\n")[0] is EXPR
    task, values = parse_task_file("\ufeffvalence, arousal\r\n0.5,-0.25\r\n-5,-5\r\n\r\n")
    assert task is VA and values.shape == (2, 2)
    np.testing.assert_array_equal(values, [[0.5, -0.25], [-5, -5]])
    task, values = parse_task_file(AU.header + "\n" + ",".join(["1"] + ["0"] * 11) + "\n")
    assert task is AU and values.tolist() == [[1] + [0] * 11]


def test_unannotated_frames_by_task():
    assert annotated(VA, np.array([[0.1, 0.2], [-5, -5], [0.3, -5]])).tolist() == [1, 0, 0]
    au = np.array([[0] * 12, [-1] * 12, [1] * 12])
    assert annotated(AU, au).tolist() == [True, False, True]


@pytest.mark.parametrize(
    "body, line, message",
    [
        ("valence,arousal\n0.1,0.2\n1.5,0\n", 3, "valence 1.5 outside [-1, 1]"),
        ("valence,arousal\n0.1,x\n", 2, "not a number: 'x'"),
        ("valence,arousal\n0.1,nan\n", 2, "arousal nan outside"),
        ("valence,arousal\n0.1,0.2,0.3\n", 2, "3 values, expected 2"),
        ("valence,arousal\n0.1\n", 2, "1 values, expected 2"),
        (AU.header + "\n" + ",".join(["0"] * 11 + ["2"]) + "\n", 2, "AU26 is 2"),
        (AU.header + "\n" + ",".join(["-1"] * 11 + ["0"]) + "\n", 2, "AU1 is -1"),
        (AU.header + "\n" + ",".join(["0"] * 11) + "\n", 2, "11 values, expected 12"),
        (AU.header + "\n" + ",".join(["0"] * 11 + ["yes"]) + "\n", 2, "not an integer: 'yes'"),
        ("valence,dominance\n0.1,0.2\n", 1, "unknown header 'valence,dominance'"),
        ("valence,arousal\n", 2, "header but no frames"),
    ],
)
def test_bad_annotation_lines_name_file_and_line(tmp_path, body, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        read_task_file(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert message in str(info.value)


def test_predictions_have_no_unannotated_marker():
    with pytest.raises(InputError, match="outside"):
        parse_task_file("valence,arousal\n-5,-5\n", "p.txt", prediction=True)
    with pytest.raises(InputError, match="AU1 is -1"):
        parse_task_file(AU.header + "\n" + ",".join(["-1"] * 12) + "\n", "p.txt", True)


# --- the metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_concordance_matches_its_other_form(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=500)
    y = 0.5 * x + rng.normal(0.3, 0.8, 500)
    assert concordance(x, y) == pytest.approx(reference_ccc(x, y), abs=1e-12)
    assert concordance(x, x) == pytest.approx(1.0)
    centred = x - x.mean()
    assert concordance(centred, -centred) == pytest.approx(-1.0)


def test_concordance_of_constants_is_zero_not_nan():
    assert concordance(np.zeros(10), np.zeros(10)) == 0.0
    assert concordance([], []) == 0.0


def test_abaw_sum_adds_the_task_scores():
    assert abaw_sum({"va": 0.5, "expr": 0.25, "au": 0.125}) == pytest.approx(0.875)


# --- scoring files -------------------------------------------------------------------------


def test_va_score_equals_an_independent_ccc(va_split):
    root, truths, predictions = va_split
    scores = score_predictions(root / "pred", root / "ann")
    truth, predicted = pooled(truths, predictions, VA)
    assert scores["track"] == "va" and scores["videos"] == 3
    assert scores["frames"] == len(truth)
    assert scores["ccc_valence"] == pytest.approx(reference_ccc(truth[:, 0], predicted[:, 0]))
    assert scores["ccc_arousal"] == pytest.approx(reference_ccc(truth[:, 1], predicted[:, 1]))
    assert scores["score"] == pytest.approx((scores["ccc_valence"] + scores["ccc_arousal"]) / 2)
    assert 0.3 < scores["score"] < 0.95  # a real, imperfect agreement, not a degenerate one


def test_au_score_equals_sklearn(au_split):
    root, truths, predictions = au_split
    scores = score_predictions(root / "pred", root / "ann")
    truth, predicted = pooled(truths, predictions, AU)
    expected = f1_score(truth, predicted, average=None, zero_division=0)
    assert scores["track"] == "au" and scores["frames"] == len(truth)
    assert list(scores["f1_per_au"]) == list(AU_NAMES)
    np.testing.assert_allclose(list(scores["f1_per_au"].values()), expected, atol=1e-12)
    assert scores["f1_per_au"]["AU15"] == 0.0
    assert scores["score"] == pytest.approx(expected.mean())


@pytest.mark.parametrize("fixture", ["va_split", "au_split"])
def test_one_file_layout_scores_as_the_per_video_files(fixture, request):
    root, truths, predictions = request.getfixturevalue(fixture)
    task = VA if fixture == "va_split" else AU
    text = format_submission(task, predictions)
    header, *rows = text.splitlines()
    rows = rows[::-1]  # any order
    (root / "one.csv").write_text("\r\n".join([header, *rows]) + "\r\n")
    assert score_predictions(root / "one.csv", root / "ann") == score_predictions(
        root / "pred", root / "ann"
    )


def test_one_file_layout_round_trips():
    values = {"a": np.array([[0.5, -0.5], [0.25, 1.0]], dtype=np.float32)}
    task, rows = parse_submission(format_submission(VA, values))
    assert task is VA and sorted(rows["a"]) == [1, 2]
    np.testing.assert_array_equal(rows["a"][2], [0.25, 1.0])
    assert format_submission(VA, values).splitlines()[1] == "a/00001.jpg,0.5,-0.5"


def test_one_file_layout_needs_a_row_for_each_annotated_frame(va_split):
    root, truths, predictions = va_split
    lines = format_submission(VA, predictions).splitlines()
    first_annotated = int(np.flatnonzero(annotated(VA, truths["video1"]))[0]) + 1
    dropped = f"video1/{first_annotated:05d}.jpg"
    kept = [line for line in lines if not line.startswith(dropped)]
    (root / "one.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(InputError, match=f"no row for {dropped}"):
        score_predictions(root / "one.csv", root / "ann")


def test_rows_for_unannotated_frames_may_be_missing(va_split):
    root, truths, predictions = va_split
    unannotated = int(np.flatnonzero(~annotated(VA, truths["video0"]))[0]) + 1
    lines = format_submission(VA, predictions).splitlines()
    kept = [line for line in lines if not line.startswith(f"video0/{unannotated:05d}.jpg")]
    assert len(kept) == len(lines) - 1
    (root / "one.csv").write_text("\n".join(kept) + "\n")
    assert score_predictions(root / "one.csv", root / "ann") == score_predictions(
        root / "pred", root / "ann"
    )


def test_a_split_folder_holds_one_task(va_split):
    root, _, _ = va_split
    (root / "ann" / "stray.txt").write_text(EXPR.header + "\n1\n")
    with pytest.raises(InputError, match="one split folder holds one track"):
        score_predictions(root / "pred", root / "ann")


def test_predictions_of_another_task_are_refused(va_split):
    root, truths, _ = va_split
    write(root / "pred" / "video0.txt", AU, np.zeros((300, 12), dtype=np.int8))
    with pytest.raises(InputError, match="action units prediction for valence-arousal"):
        score_predictions(root / "pred", root / "ann")


def score_cli(predictions, annotations, *extra) -> int:
    return main(
        ["score", "--predictions", str(predictions), "--annotations", str(annotations), *extra]
    )


def test_score_json_names_the_task_and_its_details(va_split, au_split, capsys):
    root, _, _ = va_split  # both fixtures share tmp_path: au_split wrote v0, v1 beside them
    (root / "au_ann").mkdir()
    for name in ("v0", "v1"):
        (root / "ann" / f"{name}.txt").rename(root / "au_ann" / f"{name}.txt")
    assert score_cli(root / "pred", root / "ann", "--json") == 0
    va = json.loads(capsys.readouterr().out)
    assert va["track"] == "va" and {"score", "frames", "ccc_valence", "ccc_arousal"} <= set(va)
    assert score_cli(root / "pred", root / "au_ann", "--json") == 0
    au = json.loads(capsys.readouterr().out)
    assert au["track"] == "au" and list(au["f1_per_au"]) == list(AU_NAMES)
    assert score_cli(root / "pred", root / "au_ann") == 0
    assert capsys.readouterr().out.startswith(f"mean AU F1 {au['score']:.4f}")


def test_score_cli_bad_line_is_one_line_and_exit_2(va_split, capsys):
    root, _, _ = va_split
    lines = (root / "ann" / "video1.txt").read_text().splitlines()
    lines[4] = "0.2,7"
    (root / "ann" / "video1.txt").write_text("\n".join(lines) + "\n")
    code = score_cli(root / "pred", root / "ann")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "video1.txt:5: arousal 7 outside [-1, 1]" in err


def test_a_frame_with_one_unannotated_value_is_left_out_of_va_scores():
    from abaw_expr.evaluation.metrics import va_scores

    truth = np.array([[0.1, 0.2], [0.5, -0.3], [0.3, -5], [-5, -5], [-0.4, 0.6]])
    predicted = np.array([[0.0, 0.1], [0.4, -0.1], [0.9, 0.9], [0.9, 0.9], [-0.2, 0.5]])
    scores = va_scores(truth, predicted)
    keep = [0, 1, 4]
    assert scores["frames"] == 3
    assert scores["ccc_valence"] == pytest.approx(reference_ccc(truth[keep, 0], predicted[keep, 0]))
