"""The ABAW label-file parser: the quirks it tolerates and the errors it reports."""

from __future__ import annotations

import numpy as np
import pytest

from abaw_expr.data.annotations import (
    find_splits,
    format_labels,
    list_label_files,
    parse_labels,
    read_labels,
    write_labels,
)
from abaw_expr.errors import InputError
from abaw_expr.tasks import CLASS_NAMES, HEADER


def _write(tmp_path, text: str | bytes, name: str = "video1.txt"):
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


# --- tolerated quirks ---------------------------------------------------------------------


def test_plain_file(tmp_path):
    path = _write(tmp_path, HEADER + "\n0\n-1\n7\n3\n")
    labels = read_labels(path)
    assert labels.dtype == np.int8
    assert labels.tolist() == [0, -1, 7, 3]


def test_no_final_newline(tmp_path):
    assert read_labels(_write(tmp_path, HEADER + "\n1\n2")).tolist() == [1, 2]


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + HEADER + "\n1\n2\n",  # BOM
        HEADER + "\r\n1\r\n2\r\n",  # CRLF
        "\ufeff" + HEADER + "\r\n1\r\n2\r\n",  # both
        HEADER + "\n1\n2\n\n\n",  # trailing blank lines
        HEADER + "\r\n1\r\n2\r\n\r\n  \r\n",  # trailing blank lines with CRLF and spaces
        HEADER + "\n 1\n2 \n",  # spaces around values
        HEADER + "\n\t1\t\n  2  \n",  # tabs around values
        " , ".join(CLASS_NAMES) + "\n1\n2\n",  # spaces around header names
        "  " + HEADER + "  \n1\n2\n",  # spaces around the header line
    ],
    ids=[
        "bom",
        "crlf",
        "bom-crlf",
        "trailing-blank",
        "trailing-blank-crlf",
        "spaces",
        "tabs",
        "header-spaces",
        "header-line-spaces",
    ],
)
def test_tolerated_quirks(tmp_path, text):
    assert read_labels(_write(tmp_path, text)).tolist() == [1, 2]


def test_parse_labels_from_string():
    assert parse_labels(HEADER + "\n5\n").tolist() == [5]


# --- errors name the file and the line ----------------------------------------------------


def _error(path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        read_labels(path, **kwargs)
    return info.value


@pytest.mark.parametrize(
    "bad_value",
    ["9", "8", "-2", "abc", "1.5", "", "1,2", "0x1", "nan"],
    ids=["9", "8", "-2", "abc", "1.5", "blank", "two-values", "hex", "nan"],
)
def test_bad_label_names_file_and_line(tmp_path, bad_value):
    # the bad value is body line 3 = file line 4
    path = _write(tmp_path, f"{HEADER}\n0\n1\n{bad_value}\n2\n")
    err = _error(path)
    assert err.line == 4
    assert f"{path}:4:" in str(err)
    assert err.path == path


def test_bad_label_on_first_body_line(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n9\n")
    err = _error(path)
    assert f"{path}:2:" in str(err)
    assert "9" in str(err)


def test_line_numbers_count_crlf_and_bom(tmp_path):
    path = _write(tmp_path, "\ufeff" + HEADER + "\r\n0\r\n1\r\n8\r\n")
    assert f"{path}:4:" in str(_error(path))


def test_unannotated_refused_when_not_allowed(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n0\n-1\n")
    assert f"{path}:3:" in str(_error(path, allow_unannotated=False))


def test_missing_header(tmp_path):
    path = _write(tmp_path, "0\n1\n2\n")
    err = _error(path)
    assert f"{path}:1:" in str(err)
    assert "header" in str(err)


@pytest.mark.parametrize(
    "header",
    [
        HEADER.replace("Happiness", "Happyness"),  # misspelt
        HEADER.replace("Anger", "anger"),  # wrong case
        ",".join(("Anger", "Neutral") + CLASS_NAMES[2:]),  # reordered
        ",".join(CLASS_NAMES[:-1]),  # a class missing
        HEADER + ",Contempt",  # an extra class
        HEADER.replace(",", ";"),  # wrong separator
    ],
    ids=["misspelt", "case", "reordered", "missing-class", "extra-class", "semicolons"],
)
def test_wrong_header(tmp_path, header):
    path = _write(tmp_path, header + "\n0\n1\n")
    err = _error(path)
    assert f"{path}:1:" in str(err)
    assert "header" in str(err)


@pytest.mark.parametrize(
    "text", ["", "\n", "\n\n  \n", "\ufeff"], ids=["0b", "nl", "blanks", "bom"]
)
def test_empty_file(tmp_path, text):
    path = _write(tmp_path, text)
    err = _error(path)
    assert f"{path}:1:" in str(err)
    assert "empty" in str(err)


@pytest.mark.parametrize("text", [HEADER, HEADER + "\n", HEADER + "\r\n\r\n"])
def test_header_only(tmp_path, text):
    path = _write(tmp_path, text)
    err = _error(path)
    assert f"{path}:2:" in str(err)
    assert "no frames" in str(err)


def test_folder_passed_as_file(tmp_path):
    folder = tmp_path / "video1.txt"
    folder.mkdir()
    err = _error(folder)
    assert str(folder) in str(err)
    assert "folder" in str(err)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    err = _error(path)
    assert str(path) in str(err)


def test_non_utf8(tmp_path):
    path = _write(tmp_path, HEADER.encode() + b"\n0\n\xff\xfe1\n")
    err = _error(path)
    assert str(path) in str(err)
    assert "UTF-8" in str(err)


def test_utf16_file_is_refused(tmp_path):
    path = _write(tmp_path, (HEADER + "\n0\n").encode("utf-16"))
    assert str(path) in str(_error(path))


# --- writing ------------------------------------------------------------------------------


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 8, size=500).astype(np.int8)
    path = tmp_path / "sub" / "video.txt"
    write_labels(path, labels)
    back = read_labels(path)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, labels)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\r" not in text


def test_round_trip_list_and_overwrite(tmp_path):
    path = tmp_path / "video.txt"
    write_labels(path, [0, 1, 2, 3, 4, 5, 6, 7])
    write_labels(path, [7, 7])
    assert read_labels(path).tolist() == [7, 7]
    assert format_labels([3]) == HEADER + "\n3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["video.txt"]  # no temp file left


# --- folders ------------------------------------------------------------------------------


def test_list_label_files_sorted_txt_only(tmp_path):
    for name in ["b.txt", "a.txt", "c_left.txt", "notes.md"]:
        _write(tmp_path, HEADER + "\n0\n", name)
    (tmp_path / "folder.txt").mkdir()
    assert [p.name for p in list_label_files(tmp_path)] == ["a.txt", "b.txt", "c_left.txt"]


def test_list_label_files_empty_folder(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(InputError, match="no <video>.txt") as info:
        list_label_files(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_list_label_files_missing_folder(tmp_path):
    missing = tmp_path / "Train_Set"
    with pytest.raises(InputError, match="no such folder") as info:
        list_label_files(missing)
    assert str(missing) in str(info.value)


def test_list_label_files_given_a_file(tmp_path):
    path = _write(tmp_path, HEADER + "\n0\n")
    with pytest.raises(InputError, match="is a file") as info:
        list_label_files(path)
    assert str(path) in str(info.value)


def test_find_splits(tmp_path):
    (tmp_path / "Train_Set").mkdir()
    assert find_splits(tmp_path) == {"Train_Set": tmp_path / "Train_Set"}
    (tmp_path / "Validation_Set").mkdir()
    (tmp_path / "Other_Set").mkdir()
    assert find_splits(tmp_path) == {
        "Train_Set": tmp_path / "Train_Set",
        "Validation_Set": tmp_path / "Validation_Set",
    }


def test_find_splits_only_validation(tmp_path):
    (tmp_path / "Validation_Set").mkdir()
    assert list(find_splits(tmp_path)) == ["Validation_Set"]


def test_find_splits_a_file_named_like_a_split_does_not_count(tmp_path):
    (tmp_path / "Train_Set").write_text("")
    with pytest.raises(InputError, match="neither"):
        find_splits(tmp_path)


def test_find_splits_errors(tmp_path):
    with pytest.raises(InputError, match="neither") as info:
        find_splits(tmp_path)
    assert str(tmp_path) in str(info.value)
    missing = tmp_path / "missing"
    with pytest.raises(InputError, match="no such folder") as info:
        find_splits(missing)
    assert str(missing) in str(info.value)
    file = _write(tmp_path, "x", "file.txt")
    with pytest.raises(InputError, match="is a file") as info:
        find_splits(file)
    assert str(file) in str(info.value)
