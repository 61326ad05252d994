"""atomic_write: the old file or the new one, never half, and no temporary file left behind."""

from __future__ import annotations

import json
import os
import stat

import pytest

from abaw_expr.writers import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)


class Boom(Exception):
    pass


def _half_then_raise(tmp):
    with open(tmp, "wb") as handle:
        handle.write(b"half of the new cont")
        handle.flush()
        raise Boom("disk on fire")


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_failed_write_keeps_the_old_file(tmp_path, error):
    path = tmp_path / "predictions.txt"
    path.write_bytes(b"the old content\n")

    def write(tmp):
        tmp.write_bytes(b"half")
        raise error("midway")

    with pytest.raises(error):
        atomic_write(path, write)
    assert path.read_bytes() == b"the old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.txt"]


def test_failed_write_midway_through_a_handle(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(Boom):
        atomic_write(path, _half_then_raise)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "new" / "file.txt"
    with pytest.raises(Boom):
        atomic_write(path, _half_then_raise)
    assert not path.exists()
    assert os.listdir(tmp_path / "new") == []


def test_writer_that_removes_its_temp_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")

    def write(tmp):
        tmp.unlink()
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_success_replaces_content(tmp_path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"a much longer old content than the new one\n")
    seen = []

    def write(tmp):
        seen.append(tmp)
        assert tmp.parent == path.parent  # beside the target: os.replace stays atomic
        assert tmp != path
        tmp.write_bytes(b"new\n")

    atomic_write(path, write)
    assert path.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["out.txt"]
    assert not seen[0].exists()


def test_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"


def test_helpers(tmp_path):
    atomic_write_bytes(tmp_path / "b", b"\x00\x01")
    assert (tmp_path / "b").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "t", "é\n")
    assert (tmp_path / "t").read_bytes() == "é\n".encode()
    atomic_write_json(tmp_path / "j.json", {"macro_f1": 0.5, "per_class": [1, 2]})
    assert json.loads((tmp_path / "j.json").read_text()) == {"macro_f1": 0.5, "per_class": [1, 2]}
    assert sorted(os.listdir(tmp_path)) == ["b", "j.json", "t"]


def test_failed_json_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_mode_follows_the_umask(tmp_path):
    """A written file gets the mode a plain open() would give it, not mkstemp's 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic", "x")
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
