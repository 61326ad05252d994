"""Config defaults (the paper's recipe), YAML in and out, overrides, and input errors."""

from __future__ import annotations

import pytest
import yaml

from abaw_expr.config import Config, config_from_dict, load_config, save_config
from abaw_expr.errors import InputError


def _yaml(tmp_path, text: str, name: str = "run.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_papers():
    c = load_config()
    assert c.data.seq_len == 64
    assert c.data.stride == 64
    assert c.data.batch_size == 16
    assert c.trainer.epochs == 30
    assert c.optim.lr == pytest.approx(1e-3)
    assert c.model.variant == "combine"
    assert c.model.frozen_stages == 2
    assert c.loss.gamma == pytest.approx(2.0)
    assert c.loss.alpha == pytest.approx(0.9)
    assert c.loss.kl_weight == pytest.approx(0.2)
    assert c.loss.smoothing == pytest.approx(0.1)
    assert c.data.hflip == pytest.approx(0.5)
    assert c.data.color_jitter == pytest.approx([0.5, 0.25, 0.25])
    assert c == Config()


def test_defaults_are_not_shared():
    a, b = Config(), Config()
    a.data.color_jitter[0] = 0.0
    assert b.data.color_jitter[0] == 0.5


def test_yaml_round_trip_defaults(tmp_path):
    path = tmp_path / "out" / "config.yaml"
    save_config(Config(), path)
    assert load_config(path) == Config()


def test_yaml_round_trip_changed(tmp_path):
    c = Config()
    c.optim.lr = 3e-4
    c.trainer.epochs = 5
    c.model.variant = "only_trans"
    c.data.color_jitter = [0.1, 0.2, 0.3]
    c.data.split_at_gaps = True
    c.trainer.devices = "0,1"
    path = tmp_path / "config.yaml"
    save_config(c, path)
    back = load_config(path)
    assert back == c
    assert back.to_dict() == c.to_dict()
    assert config_from_dict(c.to_dict()) == c
    assert yaml.safe_load(path.read_text())["optim"]["lr"] == pytest.approx(3e-4)


def test_partial_yaml(tmp_path):
    path = _yaml(tmp_path, "optim:\n  lr: 5.0e-4\ntrainer:\n  epochs: 3\n")
    c = load_config(path)
    assert c.optim.lr == pytest.approx(5e-4) and c.trainer.epochs == 3
    assert c.data == Config().data


def test_yaml_exponent_without_dot(tmp_path):
    # PyYAML reads 3e-4 as a string; it must still be a float here
    c = load_config(_yaml(tmp_path, "optim:\n  lr: 3e-4\n"))
    assert c.optim.lr == pytest.approx(3e-4) and isinstance(c.optim.lr, float)


def test_empty_yaml_is_defaults(tmp_path):
    assert load_config(_yaml(tmp_path, "")) == Config()
    assert load_config(_yaml(tmp_path, "# only a comment\n")) == Config()


def test_override():
    c = load_config(overrides=["optim.lr=3e-4"])
    assert c.optim.lr == pytest.approx(3e-4) and isinstance(c.optim.lr, float)
    c = load_config(overrides=["trainer.epochs=7", "model.variant=only_att", "data.hflip=0"])
    assert c.trainer.epochs == 7 and c.model.variant == "only_att" and c.data.hflip == 0.0
    c = load_config(overrides=["data.color_jitter=[0.1, 0.2, 0.3]", "trainer.devices=2"])
    assert c.data.color_jitter == pytest.approx([0.1, 0.2, 0.3]) and c.trainer.devices == "2"


def test_override_wins_over_yaml(tmp_path):
    path = _yaml(tmp_path, "optim:\n  lr: 0.1\n")
    assert load_config(path, ["optim.lr=3e-4"]).optim.lr == pytest.approx(3e-4)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("trainer:\n  epochs: 3\nbogus: 1\n", "bogus"),
        ("data:\n  seq_len: 8\n  seq_lenn: 8\n", "data.seq_lenn"),
        ("optim:\n  learning_rate: 0.1\n", "optim.learning_rate"),
    ],
)
def test_unknown_key(tmp_path, text, key):
    path = _yaml(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert repr(key) in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("optim.learning_rate=1", "'optim.learning_rate'"),
        ("bogus.lr=1", "'bogus'"),
        ("data.seq_len.x=1", "data.seq_len"),
    ],
)
def test_unknown_key_override(item, needle):
    with pytest.raises(InputError) as info:
        load_config(overrides=[item])
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('trainer:\n  epochs: "ten"\n', "trainer.epochs"),
        ("trainer:\n  epochs: 3.5\n", "trainer.epochs"),
        ("data:\n  hflip: true\n", "data.hflip"),
        ("data:\n  split_at_gaps: 3\n", "data.split_at_gaps"),
        ("data:\n  color_jitter: 0.5\n", "data.color_jitter"),
        ("data:\n  color_jitter: [0.5, yes, 0.2]\n", "data.color_jitter"),
        ("model:\n  variant: [combine]\n", "model.variant"),
        ("model: combine\n", "model"),
    ],
)
def test_wrong_type(tmp_path, text, key):
    path = _yaml(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert key in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("item", ["trainer.epochs=ten", "data.hflip=true", "optim.lr=fast"])
def test_wrong_type_override(item):
    with pytest.raises(InputError):
        load_config(overrides=[item])


@pytest.mark.parametrize("item", ["optim.lr", "lr=3", "optim.lr=[1", "data.color_jitter={"])
def test_malformed_override(item):
    with pytest.raises(InputError):
        load_config(overrides=[item])


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("data:\n  seq_len: 8\n  stride: [1, 2\n", None),
        ("data:\n  seq_len: 8\n bad_indent: 2\n", 3),
        ("optim:\n  lr: 0.1\n\t- tab\n", 3),
    ],
)
def test_invalid_yaml(tmp_path, text, line):
    path = _yaml(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.line is not None
    if line is not None:
        assert info.value.line == line
    assert f"{path}:{info.value.line}:" in str(info.value)
    assert "YAML" in str(info.value)


def test_yaml_not_a_mapping(tmp_path):
    with pytest.raises(InputError, match="mapping"):
        load_config(_yaml(tmp_path, "- a\n- b\n"))


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="folder"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("model:\n  variant: transformer\n", "model.variant"),
        ("model:\n  frozen_stages: 9\n", "frozen_stages"),
        ("data:\n  seq_len: 0\n", "seq_len"),
        ("data:\n  color_jitter: [0.5]\n", "color_jitter"),
        ("optim:\n  lr: 0\n", "lr"),
        ("optim:\n  optimizer: sgd\n", "optimizer"),
    ],
)
def test_bad_values(tmp_path, text, needle):
    with pytest.raises(InputError, match=needle):
        load_config(_yaml(tmp_path, text))


def test_bad_variant_override():
    with pytest.raises(InputError, match="variant"):
        load_config(overrides=["model.variant=nope"])
