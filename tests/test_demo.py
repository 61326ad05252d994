"""abaw-expr demo, made small: the three heads (the paper's, with relative positions, frame
only) trained over seeds on every track, and every track's figures for each in the summary
and in compare.html."""

from __future__ import annotations

import json
import re

import pytest

from abaw_expr.synthetic.demo import run_demo
from abaw_expr.training.ablation import pm

HEADS = ["combine", "combine+pos", "no_att_trans"]
ROWS = {  # the summary's row -> (track, key of the ablation table's track entry)
    "expression macro F1 %": ("expr", "score_stats"),
    "valence-arousal mean CCC %": ("va", "score_stats"),
    "CCC valence %": ("va", "ccc_valence"),
    "CCC arousal %": ("va", "ccc_arousal"),
    "action units mean F1 %": ("au", "score_stats"),
}
VERDICTS = {
    "expression macro F1": "expr",
    "valence-arousal mean CCC": "va",
    "action units mean F1": "au",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    size = {"train_videos": 3, "val_videos": 2, "frames": 100}
    summary = run_demo(out, epochs=1, sample_size=size, seeds=2, video=False)
    return out, summary


def cells(summary: str, title: str) -> list[str]:
    """The cells of the summary's table row ``title`` (columns are 2+ spaces apart)."""
    (line,) = [x for x in summary.splitlines() if x.strip().startswith(title)]
    return re.split(r"\s{2,}", line.strip())[1:]


def test_the_summary_gives_every_track_of_the_three_heads(demo):
    out, summary = demo
    assert (out / "summary.txt").read_text() == summary + "\n"
    table = json.loads((out / "runs" / "ablation.json").read_text())
    assert list(table["arms"]) == HEADS
    arms = table["arms"]
    for arm in HEADS:
        assert arms[arm]["seeds"] == [0, 1]
        assert all(len(arms[arm]["tracks"][t]["score"]) == 2 for t in ("expr", "va", "au"))
    lines = summary.splitlines()
    header = next(x for x in lines if x.strip().startswith("paper (combine)"))
    assert re.split(r"\s{2,}", header.strip()) == [
        "paper (combine)",
        "paper + positions (combine+pos)",
        "frame only (no_att_trans)",
    ]
    for title, (track, key) in ROWS.items():
        expected = [pm(arms[a]["tracks"][track][key]) for a in HEADS]
        assert cells(summary, title) == expected, title
        assert all(" ± " in c for c in expected)  # a mean and a spread over the seeds
    assert cells(summary, "ABAW sum of the tracks %") == [pm(arms[a]["score"]) for a in HEADS]
    # whether positions help, track by track: the difference of the means against the spreads
    at = next(i for i, x in enumerate(lines) if x.startswith("relative positions (combine+pos)"))
    for title, track in VERDICTS.items():
        pos, paper = (arms[a]["tracks"][track]["score_stats"] for a in ("combine+pos", "combine"))
        delta = 100 * (pos["mean"] - paper["mean"])
        spread = 100 * (pos["std"] + paper["std"])
        side = "beyond" if abs(delta) > spread else "within"
        assert f"{title} {delta:+.1f} ({side} the spread, {spread:.1f})" in lines[at + 1], title
    # every class and AU, as mean ± std, a column per head
    title = "mean ± std over seeds, per class and per AU (compare.html has each run too):"
    seed_rows = lines[lines.index(title) + 1 :]
    assert re.split(r"\s{2,}", seed_rows[0].strip()) == HEADS
    assert any(x.strip().startswith("F1 AU12") and x.count("±") == 3 for x in seed_rows)


def test_compare_html_sets_the_three_heads_side_by_side(demo):
    out, _ = demo
    page = (out / "compare.html").read_text()
    for arm in HEADS:
        for seed in (0, 1):
            assert f"runs/{arm}/seed{seed}<" in page  # a column (folder) per run
    assert "model.positional=relative" in page  # the group of combine+pos
    for row in ("VA mean CCC (evaluate)", "AU mean F1 (evaluate)", "ABAW sum (evaluate)"):
        assert row in page
    groups = page.split("mean ± std over seeds")[1]  # the group table: a column per head
    assert groups.count("model.variant=combine") == 2 and "model.variant=no_att_trans" in groups
