"""Where a checkpoint's model comes from: the record training writes, ``describe``, and the one
warning that a toy model (the synthetic sample's, or a random backbone's) gets from ``predict``
and ``serve``."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest
import torch

from abaw_expr.cli import main
from abaw_expr.inference.checkpoint import load_model, save_model_checkpoint
from abaw_expr.inference.provenance import (
    backbone_record,
    data_record,
    model_warning,
    read_provenance,
)
from abaw_expr.serve import create_app

from .conftest import CPU_EAGER, tiny_config, wait_for_job

NEVER_SEEN = "this model has never seen a real face"


def _with_provenance(source, path, record):
    """A copy of checkpoint ``source`` whose record is ``record`` (None: no record at all)."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint.pop("provenance", None)
    if record is not None:
        checkpoint["provenance"] = record
    torch.save(checkpoint, path)
    return path


REAL = {
    "data": {"kind": "annotations", "folder": "my_labels", "label_files": 4, "files_sha256": "ab"},
    "backbone": {"weights": "imagenet"},
    "tasks": ["expr"],
}


def test_a_trained_checkpoint_records_its_data_backbone_tasks_code_and_scores(
    trained_run, tiny_sample
):
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(trained_run / name, map_location="cpu", weights_only=True)
        record = checkpoint["provenance"]
        files = sorted((tiny_sample / "annotations").rglob("*.txt"))
        assert record["data"]["kind"] == "synthetic sample"
        assert record["data"]["folder"] == "annotations"
        assert record["data"]["label_files"] == len(files) > 0
        assert len(record["data"]["files_sha256"]) == 64
        assert record["backbone"] == {"architecture": "regnet_y_1_6gf", "weights": "random"}
        assert record["tasks"] == ["expr"]
        assert record["code"]["version"] and record["code"]["git_commit"]
        run = json.loads((trained_run / "run.json").read_text())
        assert record["validation"]["val/macro_f1"] == pytest.approx(run["best_macro_f1"])
        assert record["epoch"] == 0
    model, _ = load_model(trained_run / "best.ckpt")
    assert model.provenance == record


def test_data_from_outside_the_sample_is_the_users_annotations_with_a_hash_of_its_files(
    tiny_sample, tmp_path
):
    """The sample is known by the sample.json above its folders; a copy elsewhere is the user's
    data, named by its folder, and its hash changes with the list of label files."""
    assert data_record(tiny_sample / "tracks")["kind"] == "synthetic sample"
    assert data_record(tmp_path, images_dir=tiny_sample / "cropped_aligned")["kind"] == (
        "synthetic sample"
    )
    mine = tmp_path / "my_labels"
    shutil.copytree(tiny_sample / "annotations", mine)
    record = data_record(mine, images_dir=tmp_path)
    assert record["kind"] == "annotations" and record["folder"] == "my_labels"
    same = data_record(tiny_sample / "annotations")
    assert (record["label_files"], record["files_sha256"]) == (
        same["label_files"],
        same["files_sha256"],
    )
    first = next(iter(sorted(mine.rglob("*.txt"))))
    first.rename(first.with_name("renamed.txt"))
    assert data_record(mine)["files_sha256"] != record["files_sha256"]


def test_the_backbone_is_imagenet_random_or_a_file_with_its_hash(tmp_path):
    assert backbone_record("imagenet") == {"weights": "imagenet"}
    assert backbone_record("none") == {"weights": "random"}
    assert backbone_record("pretrained") == {"weights": "pretrained"}  # timm's own download
    assert backbone_record("imagenet_v1") == {"weights": "imagenet", "version": "imagenet_v1"}
    weights = tmp_path / "b.safetensors"
    weights.write_bytes(b"some weights")
    assert backbone_record(str(weights)) == {
        "weights": "file",
        "file": "b.safetensors",
        "sha256": hashlib.sha256(b"some weights").hexdigest(),
    }


def test_a_checkpoint_without_a_record_loads_and_reads_as_unknown(tmp_path, capsys):
    config = tiny_config(model__backbone_weights="imagenet")
    from abaw_expr.model.build import build_model

    config.model.backbone_weights = "none"  # no download; the config then says imagenet
    model = build_model(config)
    config.model.backbone_weights = "imagenet"
    save_model_checkpoint(model, config, tmp_path / "old.ckpt")
    loaded, _ = load_model(tmp_path / "old.ckpt")
    assert loaded.provenance["origin"] == "unknown"
    assert loaded.provenance["backbone"] == {
        "weights": "imagenet",
        "architecture": "regnet_y_1_6gf",
    }
    assert model_warning(loaded.provenance) is None
    assert main(["describe", "--checkpoint", str(tmp_path / "old.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "origin: unknown" in out and "data: unknown" in out and "warning" not in out


def test_describe_shows_the_record_and_the_warning(trained_run, capsys):
    assert main(["describe", "--checkpoint", str(trained_run / "best.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "data: synthetic sample, folder 'annotations'" in out
    assert "backbone: regnet_y_1_6gf, weights random" in out and "tasks: expr" in out
    assert "validation (epoch 0): " in out and "val/macro_f1" in out
    assert f"warning: {NEVER_SEEN}" in out
    assert main(["describe", "--checkpoint", str(trained_run / "best.ckpt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"]["kind"] == "synthetic sample"
    assert result["backbone"]["architecture"] == "regnet_y_1_6gf"
    assert result["model_warning"].startswith(NEVER_SEEN)


def test_a_toy_is_warned_of_and_a_real_model_is_not():
    assert model_warning({"data": {"kind": "synthetic sample"}, "backbone": {"weights": "file"}})
    assert model_warning({"data": {"kind": "annotations"}, "backbone": {"weights": "random"}})
    assert model_warning(REAL) is None
    assert read_provenance({"provenance": REAL}) is REAL


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if NEVER_SEEN in r.getMessage()]


@pytest.mark.parametrize("real", [False, True], ids=["demo-like", "real"])
def test_predict_from_images_warns_once_of_a_toy(trained_run, tiny_sample, tmp_path, caplog, real):
    checkpoint = trained_run / "best.ckpt"
    if real:
        checkpoint = _with_provenance(checkpoint, tmp_path / "real.ckpt", REAL)
    video = sorted((tiny_sample / "cropped_aligned").iterdir())[0].name
    (tmp_path / "list.txt").write_text(f"{video}\n")
    with caplog.at_level(logging.WARNING):
        code = main(
            ["predict", "--checkpoint", str(checkpoint), "--images",
             str(tiny_sample / "cropped_aligned"), "--videos", str(tmp_path / "list.txt"),
             "--out", str(tmp_path / "out"), "--device", "cpu", "--workers", "0"]
        )  # fmt: skip
    assert code == 0
    assert len(_warnings(caplog)) == (0 if real else 1)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    from abaw_expr.synthetic.video import write_synthetic_video

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_synthetic_video(path, 24, size=(320, 180), face_px=110, seed=4)
    return path


@pytest.mark.parametrize("real", [False, True], ids=["demo-like", "real"])
def test_predict_from_video_warns_once_and_records_it(
    trained_run, short_clip, tmp_path, caplog, real
):
    checkpoint = trained_run / "best.ckpt"
    if real:
        checkpoint = _with_provenance(checkpoint, tmp_path / "real.ckpt", REAL)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = main(
            ["predict", "--checkpoint", str(checkpoint), "--video", str(short_clip),
             "--out", str(out), "--device", "cpu", "--detector", "dlib-hog"]
        )  # fmt: skip
    assert code == 0
    assert len(_warnings(caplog)) == (0 if real else 1)
    record = json.loads((out / "clip.json").read_text())
    if real:
        assert record["model_warning"] is None and record["model"] == REAL
    else:
        assert record["model_warning"].startswith(NEVER_SEEN)
        assert record["model"]["data"]["kind"] == "synthetic sample"


@pytest.mark.parametrize("real", [False, True], ids=["demo-like", "real"])
def test_serve_shows_a_toys_warning_as_a_banner_and_in_result_json(
    trained_run, short_clip, tmp_path, caplog, real
):
    checkpoint = trained_run / "best.ckpt"
    if real:
        checkpoint = _with_provenance(checkpoint, tmp_path / "real.ckpt", REAL)
    with caplog.at_level(logging.WARNING):
        app = create_app(checkpoint, settings=CPU_EAGER)
    try:
        assert len(_warnings(caplog)) == (0 if real else 1)  # once, when the server starts
        client = app.test_client()
        page = client.get("/").get_data(as_text=True)
        assert ('id="model-warning"' in page) is not real
        assert (NEVER_SEEN in page) is not real
        with open(short_clip, "rb") as handle:
            job = client.post("/api/jobs", data={"video": (handle, "clip.mp4")}).get_json()
        job = wait_for_job(client, job["id"])
        assert job["state"] == "done", job
        result = client.get(f"/api/jobs/{job['id']}/files/{job['outputs']['result']}").get_json()
        if real:
            assert result["model_warning"] is None and result["model"] == REAL
        else:
            assert result["model_warning"].startswith(NEVER_SEEN)
            assert result["model"]["backbone"] == {
                "architecture": "regnet_y_1_6gf",
                "weights": "random",
            }
        assert len(_warnings(caplog)) == (0 if real else 1)  # not again per video
    finally:
        app.cleanup()
