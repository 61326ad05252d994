"""The second route to a model (docs/videos.md#where-a-model-comes-from): label a few of your
own videos and train, one command after another, as a user types them."""

from __future__ import annotations

import json

import torch

from abaw_expr.cli import main
from abaw_expr.synthetic.video import write_synthetic_video
from abaw_expr.tasks import HEADER

# Small enough for 2 CPU cores: three 40-frame clips, 8-frame windows, one epoch.
SMALL = ["--set", "data.seq_len=8", "--set", "data.stride=8", "--set", "data.eval_stride=4",
         "--set", "data.batch_size=4", "--set", "data.num_workers=0"]  # fmt: skip


def test_preprocess_label_by_hand_extract_and_train_gives_a_model_of_your_data(tmp_path, capsys):
    from safetensors.torch import save_file

    from abaw_expr.model import build_backbone

    videos, data, labels = tmp_path / "videos", tmp_path / "data", tmp_path / "my_labels"
    videos.mkdir()
    truths = {
        name: write_synthetic_video(videos / f"{name}.mp4", 40, (320, 180), face_px=110, seed=s)
        for s, name in enumerate(("alice", "bob", "carol"))
    }
    # 1. faces found, aligned and cut out: data/cropped_aligned/<video>/00001.jpg ...
    assert main(["preprocess", "--video", str(videos), "--out", str(data),
                 "--faces", "one", "--detector", "dlib-hog"]) == 0  # fmt: skip
    # 2. a label file per video, by hand: the header, then one class number per frame
    for split, names in (("Train_Set", ("alice", "bob")), ("Validation_Set", ("carol",))):
        (labels / split).mkdir(parents=True)
        for name in names:
            lines = [HEADER, *(str(int(v)) for v in truths[name].labels)]
            (labels / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    # the backbone: ImageNet's in the docs; here (no network) a file, as a user's own would be
    torch.manual_seed(0)
    weights = tmp_path / "backbone.safetensors"
    backbone = build_backbone("none", frozen_stages=5)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    images = str(data / "cropped_aligned")
    # 3. the backbone's features, once
    assert main(["extract", "--images", images, "--annotations", str(labels),
                 "--out", str(tmp_path / "features"), "--backbone-weights", str(weights),
                 "--device", "cpu", "--workers", "0", "--engine", "eager"]) == 0  # fmt: skip
    # 4. the temporal head on them
    run = tmp_path / "run"
    assert main(["train", "--features", str(tmp_path / "features"), "--annotations", str(labels),
                 "--out", str(run), "--backbone-weights", str(weights), "--epochs", "1",
                 *SMALL]) == 0  # fmt: skip
    capsys.readouterr()
    # The checkpoint says where it comes from: the user's labels, the backbone file.
    assert main(["describe", "--checkpoint", str(run / "best.ckpt"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["data"]["kind"] == "annotations" and record["data"]["folder"] == "my_labels"
    assert record["data"]["label_files"] == 3
    assert record["backbone"]["weights"] == "file"
    assert record["backbone"]["file"] == "backbone.safetensors"
    assert record["model_warning"] is None
    # and it predicts a new video, frame by frame
    out = tmp_path / "predicted"
    assert main(["predict", "--checkpoint", str(run / "best.ckpt"), "--video",
                 str(videos / "carol.mp4"), "--out", str(out), "--faces", "one",
                 "--detector", "dlib-hog", "--device", "cpu"]) == 0  # fmt: skip
    assert len((out / "carol.csv").read_text().splitlines()) == 41
    assert json.loads((out / "carol.json").read_text())["model_warning"] is None
