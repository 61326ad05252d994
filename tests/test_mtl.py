"""The multi-task challenge's files (s-Aff-Wild2) and every edition's task folders."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score

from abaw_expr.cli import main
from abaw_expr.data.mtl import find_mtl, parse_mtl, read_mtl
from abaw_expr.data.task_index import build_task_index, find_tasks
from abaw_expr.errors import InputError
from abaw_expr.evaluation.mtl import score_mtl
from abaw_expr.tasks import AU_NAMES, MTL
from abaw_expr.training.loop import train

from .conftest import tiny_config

HEADER = ",".join(MTL.columns)


def _ccc(x, y):  # Lin's CCC written out, independent of evaluation.metrics
    x, y = np.asarray(x, float), np.asarray(y, float)
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * sxy / (np.var(x) + np.var(y) + (x.mean() - y.mean()) ** 2)


def _fixture(rng, videos=4, rows=60):
    """Annotation and prediction texts of sparse rows with missing values, CRLF line ends."""
    truth, pred = [HEADER], [",".join(MTL.submission_columns)]
    table = []
    for v in range(videos):
        frames = np.sort(rng.choice(np.arange(1, 400), rows, replace=False))
        for f in frames:
            va = np.round(rng.uniform(-1, 1, 2), 3)
            if rng.random() < 0.2:
                va[:] = -5
            expr = int(rng.integers(0, 8)) if rng.random() > 0.25 else -1
            au = rng.integers(0, 2, 12)
            if rng.random() < 0.2:
                au[:] = -1
            p_va = np.round(np.clip(va + rng.normal(0, 0.4, 2), -1, 1), 4)
            p_expr = expr if expr >= 0 and rng.random() < 0.5 else int(rng.integers(0, 8))
            p_au = np.where(rng.random(12) < 0.7, np.abs(au), 1 - np.abs(au))
            image = f"vid{v}-1280x720/{f:05d}.jpg"
            truth.append(f"{image},{va[0]:g},{va[1]:g},{expr}," + ",".join(map(str, au)))
            pred.append(f"{image},{p_va[0]:g},{p_va[1]:g},{p_expr}," + ",".join(map(str, p_au)))
            table.append((va, expr, au, p_va, p_expr, p_au))
    pred.append(pred.pop(1))  # rows in another order than the annotations'
    return "\r\n".join(truth) + "\r\n", "\r\n".join(pred) + "\r\n", table


def test_score_matches_an_independent_p_mtl(tmp_path, capsys):
    truth, pred, table = _fixture(np.random.default_rng(1))
    (tmp_path / "validation_set_annotations.txt").write_bytes(truth.encode())
    (tmp_path / "pred.csv").write_bytes(pred.encode())
    va = [(t, p) for t, _, _, p, _, _ in table if (t != -5).all()]
    valence = _ccc([t[0] for t, _ in va], [p[0] for _, p in va])
    arousal = _ccc([t[1] for t, _ in va], [p[1] for _, p in va])
    ex = [(e, p) for _, e, _, _, p, _ in table if e >= 0]
    f1_expr = f1_score(
        [e for e, _ in ex], [p for _, p in ex], labels=range(8), average="macro", zero_division=0
    )
    au = [(a, p) for _, _, a, _, _, p in table if (a >= 0).all()]
    f1_au = np.mean(
        [f1_score([a[i] for a, _ in au], [p[i] for _, p in au], zero_division=0) for i in range(12)]
    )
    expected = (valence + arousal) / 2 + f1_expr + f1_au
    assert main(
        ["score", "--predictions", str(tmp_path / "pred.csv"),
         "--annotations", str(tmp_path / "validation_set_annotations.txt"), "--json"]
    ) == 0  # fmt: skip
    scores = json.loads(capsys.readouterr().out)
    assert scores["track"] == "mtl" and scores["frames"] == len(table)
    assert scores["score"] == pytest.approx(expected, abs=1e-6)
    assert scores["ccc_valence"] == pytest.approx(valence, abs=1e-6)
    assert scores["ccc_arousal"] == pytest.approx(arousal, abs=1e-6)
    assert scores["f1_expr"] == pytest.approx(f1_expr, abs=1e-6)
    assert scores["f1_au"] == pytest.approx(f1_au, abs=1e-6)


def _row(image="v1/00012.jpg", va="0.31,-0.12", expr="4", au="0,1,0,0,0,0,0,0,0,0,1,0"):
    return f"{image},{va},{expr},{au}"


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        (f"{HEADER}\n{_row()}\n{_row('v1/00013.jpg')[:-2]}\n", 3, "15 values, expected 16"),
        (f"{HEADER}\n{_row(expr='9')}\n", 2, "expression is '9'"),
        (
            f"{HEADER}\n{_row()}\n{_row('v1/00020.jpg', au='0,2,0,0,0,0,0,0,0,0,1,0')}\n",
            3,
            "AU2 is '2'",
        ),
        (HEADER.replace("AU26", "AU27") + f"\n{_row()}\n", 1, "bad header"),
        (f"{HEADER}\n{_row(va='1.5,0')}\n", 2, "valence 1.5 outside"),
        (f"{HEADER}\n{_row()}\n{_row()}\n", 3, "a second row for v1/00012.jpg"),
        (f"{HEADER}\n{_row(image='v1/frame.jpg')}\n", 2, "not <video>/<frame number>.jpg"),
    ],
)
def test_bad_annotation_files_exit_2_naming_file_and_line(tmp_path, capsys, body, line, says):
    bad = tmp_path / "validation_set_annotations.txt"
    bad.write_text(body)
    (tmp_path / "images" / "v1").mkdir(parents=True)
    status = main(["stats", "--images", str(tmp_path / "images"), "--annotations", str(bad)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert f"{bad}:{line}:" in err and says in err


def test_a_missing_image_named_by_a_row_exits_2(tmp_path, capsys):
    annotations = tmp_path / "validation_set_annotations.txt"
    annotations.write_text(f"{HEADER}\n{_row()}\n{_row('v1/00013.jpg')}\n")
    (tmp_path / "images" / "v1").mkdir(parents=True)
    shutil.copyfile(__file__, tmp_path / "images" / "v1" / "00012.jpg")  # only the first
    assert (
        main(["stats", "--images", str(tmp_path / "images"), "--annotations", str(annotations)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"{annotations}:3: no image" in err and "00013.jpg" in err


def test_markers_and_sparse_rows_become_frame_arrays(tmp_path, caplog):
    text = (
        "\ufeff" + HEADER + "\r\n"
        + _row("v1/00005.jpg", va="-5,-5", expr="-1") + "\r\n"
        + _row("v1/00002.jpg", au="-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1") + "\r\n"
        + _row("v1/00009.jpg", au="-1,1,0,0,0,0,0,0,0,0,1,0") + "\r\n\r\n"
    )  # fmt: skip
    (tmp_path / "mtl").mkdir()
    (tmp_path / "mtl" / "validation_set_annotations.txt").write_text(text, newline="")
    image_dir = tmp_path / "images" / "v1"
    image_dir.mkdir(parents=True)
    for name in ("00002.jpg", "00005.jpg", "00009.jpg", "00003.jpg"):
        (image_dir / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        tasks = find_tasks(tmp_path / "mtl")
        (video,) = build_task_index(tmp_path / "images", tasks)["Validation_Set"]
    assert list(tasks) == ["expr", "va", "au"]
    assert "1 rows have -1 in only some AU columns" in caplog.text
    assert video.num_frames == 9
    assert np.flatnonzero(video.has_image).tolist() == [1, 4, 8]  # 00003.jpg is not listed
    assert np.flatnonzero(video.annotated_for("expr")).tolist() == [1, 8]
    assert np.flatnonzero(video.annotated_for("va")).tolist() == [1, 8]
    assert np.flatnonzero(video.annotated_for("au")).tolist() == [4]  # a partial row: none
    assert video.labels[1] == 4 and video.va[8].tolist() == pytest.approx([0.31, -0.12])


def test_find_mtl_takes_the_file_a_folder_or_the_challenge_folder(tmp_path):
    folder = tmp_path / MTL.folder
    folder.mkdir()
    for name in MTL.files.values():
        (folder / name).write_text(f"{HEADER}\n{_row()}\n")
    both = {
        "Train_Set": folder / MTL.files["Train_Set"],
        "Validation_Set": folder / MTL.files["Validation_Set"],
    }
    assert find_mtl(folder) == both
    assert find_mtl(tmp_path) == both
    assert find_mtl(folder / MTL.files["Train_Set"]) == {"Train_Set": both["Train_Set"]}
    assert find_mtl(tmp_path / "elsewhere") is None
    suffixed = tmp_path / "teams_copy"  # as teams' code names ABAW4's files
    suffixed.mkdir()
    (suffixed / "training_set_annotations_22.txt").write_text(f"{HEADER}\n{_row()}\n")
    assert find_mtl(suffixed) == {"Train_Set": suffixed / "training_set_annotations_22.txt"}
    (suffixed / "training_set_annotations_23.txt").write_text(f"{HEADER}\n{_row()}\n")
    with pytest.raises(InputError, match="2 files could be training_set_annotations.txt"):
        find_mtl(suffixed)
    with pytest.raises(InputError, match="second row"):
        parse_mtl(f"{HEADER}\n{_row()}\n{_row()}\n")


def test_renamed_expression_folder_is_read_and_an_unknown_folder_named(tiny_sample, tmp_path):
    root = tmp_path / "tracks"
    shutil.copytree(tiny_sample / "tracks", root)
    (root / "EXPR_Classification_Challenge").rename(root / "EXPR_Recognition_Challenge")
    (root / "Some_Other_Folder").mkdir()
    (root / "EXPR_Set" / "Training_Set").mkdir(parents=True)  # ABAW 2020's 7 classes
    done = subprocess.run(
        [sys.executable, "-m", "abaw_expr.cli", "stats", "--images",
         str(tiny_sample / "cropped_aligned"), "--annotations", str(root), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stats = json.loads(done.stdout)
    assert set(stats["Train_Set"]) == {"expr", "va", "au"}
    assert stats["Train_Set"]["expr"]["annotated"] > 0
    assert "Some_Other_Folder: ignored (not an ABAW task folder" in done.stderr
    assert "EXPR_Set: ignored (ABAW 2020-2021's 7 expression classes" in done.stderr


def test_a_root_with_no_task_is_refused_naming_what_it_holds(tmp_path, capsys):
    (tmp_path / "root" / "Annotations_2026").mkdir(parents=True)
    (tmp_path / "images").mkdir()
    status = main(
        ["stats", "--images", str(tmp_path / "images"), "--annotations", str(tmp_path / "root")]
    )
    err = capsys.readouterr().err
    assert (
        status == 2 and "it holds Annotations_2026" in err and "EXPR_Recognition_Challenge" in err
    )


def test_the_sample_writes_sparse_mtl_files(tiny_sample):
    summary = json.loads((tiny_sample / "sample.json").read_text())["mtl"]
    for split, name in MTL.files.items():
        rows = read_mtl(tiny_sample / "mtl" / name)
        listed = sum(len(r.frames) for r in rows.values())
        assert listed == summary[split]["rows"] > 0
        assert sorted(rows) == sorted(summary[split]["videos"])
        images = sum(len(list((tiny_sample / "cropped_aligned" / v).glob("*.jpg"))) for v in rows)
        assert listed < images / 2  # sparse: a selection of the frames with a face


def test_train_evaluate_predict_and_score_on_the_sample_mtl(tiny_sample, tmp_path, capsys):
    mtl = tiny_sample / "mtl"
    config = tiny_config()
    config.model.tasks = ["expr", "va", "au"]
    images = tiny_sample / "cropped_aligned"
    run = train(config, mtl, tmp_path / "run", images_dir=images, enable_progress_bar=False)
    assert run["monitor"] == "val/score"
    checkpoint = tmp_path / "run" / "best.ckpt"
    validation = mtl / MTL.files["Validation_Set"]
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--images", str(images),
                 "--annotations", str(validation), "--out", str(tmp_path / "eval"),
                 "--workers", "0", "--json", "--device", "cpu"]) == 0  # fmt: skip
    metrics = json.loads(capsys.readouterr().out.splitlines()[0])
    written = tmp_path / "eval" / "predictions" / "mtl.csv"
    assert metrics == score_mtl(written, validation) | {"checkpoint": str(checkpoint)}
    order = [line.split(",")[0] for line in validation.read_text().splitlines()[1:]]
    test_list = tmp_path / "MTL_Challenge_test_set_release.txt"
    test_list.write_text("image\n" + "\n".join(reversed(order)) + "\n")
    assert main(["predict", "--checkpoint", str(checkpoint), "--images", str(images),
                 "--videos", str(test_list), "--out", str(tmp_path / "test"),
                 "--workers", "0", "--device", "cpu"]) == 0  # fmt: skip
    lines = (tmp_path / "test" / "mtl.csv").read_text().splitlines()
    assert lines[0] == "image,valence,arousal,expression,aus"
    assert [line.split(",")[0] for line in lines[1:]] == list(reversed(order))
    assert all(len(line.split(",")) == 4 + len(AU_NAMES) for line in lines[1:])
    # the same frames, the same windows: the test file's rows are the evaluated ones
    assert sorted(lines[1:]) == sorted(written.read_text().splitlines()[1:])
