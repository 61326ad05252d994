"""abaw-expr demo, made small: the three heads (the paper's, with relative positions, frame
only) trained over seeds on every track, and every track's figures for each in the summary
and in compare.html."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from abaw_expr.tasks import CLASS_NAMES
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


# `abaw-expr demo` itself (its logging set up by the CLI), made small through run_demo's defaults
DEMO_SCRIPT = """
import sys
import abaw_expr.synthetic.demo as demo
from abaw_expr.cli import main
demo.run_demo.__kwdefaults__.update(
    sample_size={"train_videos": 3, "val_videos": 2, "frames": 100}, seeds=2, video=False
)
sys.exit(main(["demo", "--out", sys.argv[1], "--epochs", "1"]))
"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", DEMO_SCRIPT, str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout, done.stderr


@pytest.fixture(scope="module")
def demo(demo_run):
    out, stdout, _ = demo_run
    return out, stdout.removesuffix("\n")


def test_the_demo_says_its_stages_and_nothing_from_the_libraries_beneath(demo_run):
    """stdout is the summary alone; stderr holds the demo's stage lines, its progress bars and
    our own warnings, no line of Lightning (tips, "GPU available", trainer chatter) and no
    deprecation warning."""
    out, stdout, stderr = demo_run
    assert stdout == (out / "summary.txt").read_text()
    pieces = [x.strip() for x in re.split(r"[\r\n]+", stderr) if x.strip()]
    stages = [x for x in pieces if re.match(r"\[\d/5\] ", x)]
    assert [x[:5] for x in stages] == ["[1/5]", "[2/5]", "[3/5]", "[4/5]"]
    bars = [x for x in pieces if re.match(r"(features|heads): +\d+%\|", x)]
    assert {x.split(":")[0] for x in bars} == {"features", "heads"}
    assert any(x.startswith("heads: 100%") and "6/6" in x for x in bars)
    # our own warnings (this tiny sample leaves classes out) pass, each once
    ours = [x for x in pieces if x.startswith("WARNING abaw_expr.")]
    assert len(ours) == len(set(ours))
    assert [x for x in pieces if x not in stages + bars + ours] == []


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


def test_each_tasks_spread_over_seeds_is_that_of_the_seeds_own_evaluations(demo):
    """Per head and track, ablation.json's statistics, ablation.txt and the summary are the
    mean and sample std (ddof=1) of each seed's own eval/metrics.json, computed here: not one
    seed's figure for every seed, not the figures of another head."""
    out, summary = demo
    arms = json.loads((out / "runs" / "ablation.json").read_text())["arms"]
    table = (out / "runs" / "ablation.txt").read_text()
    txt_rows = {  # ablation.txt's row -> (track, key of a track's metrics.json)
        "VA mean CCC %": ("va", "score"),
        "CCC valence %": ("va", "ccc_valence"),
        "CCC arousal %": ("va", "ccc_arousal"),
        "AU mean F1 %": ("au", "score"),
        "ABAW sum of the tracks %": (None, "score"),
    }

    def stats(arm: str, track: str | None, key: str, item: str = "") -> tuple[float, float]:
        values = []
        for seed in arms[arm]["seeds"]:
            path = out / "runs" / arm / f"seed{seed}" / "eval" / "metrics.json"
            metrics = json.loads(path.read_text())
            value = (metrics["tracks"][track] if track else metrics)[key]
            values.append(value[item] if item else value)
        mean = sum(values) / len(values)
        return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5

    def written(mean: float, std: float) -> str:
        return f"{100 * mean:.1f} ± {100 * std:.1f}"

    for title, (track, key) in {**ROWS, "ABAW sum of the tracks %": (None, "score")}.items():
        key = "score" if key == "score_stats" else key
        figures = [stats(arm, track, key) for arm in HEADS]
        for arm, (mean, std) in zip(HEADS, figures, strict=True):
            if track is None:  # the ABAW sum
                recorded = arms[arm]["score"]
            else:
                recorded = arms[arm]["tracks"][track]["score_stats" if key == "score" else key]
            assert recorded["mean"] == pytest.approx(mean, abs=1e-12), (arm, title)
            assert recorded["std"] == pytest.approx(std, abs=1e-12), (arm, title)
        assert cells(summary, title) == [written(*f) for f in figures], title
    for title, (track, key) in txt_rows.items():
        assert cells(table, title) == [written(*stats(arm, track, key)) for arm in HEADS], title
    # compare's table of the demo, AU by AU (the spread of the mean ± std table of the summary)
    lines = summary.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("mean ± std over seeds, per class"))
    (au12,) = [x for x in lines[start:] if x.strip().startswith("F1 AU12")]
    au12_f1 = [stats(arm, "au", "f1_per_au", "AU12") for arm in HEADS]
    assert re.split(r"\s{2,}", au12.strip())[1:] == [written(*f) for f in au12_f1]
    # ablation.json's each AU, ablation.txt's each class, the summary's macro F1 seed by seed
    for arm in HEADS:
        for au, recorded in arms[arm]["tracks"]["au"]["f1_per_au"].items():
            mean, std = stats(arm, "au", "f1_per_au", au)
            assert (recorded["mean"], recorded["std"]) == pytest.approx((mean, std)), (arm, au)
    for name in CLASS_NAMES:
        expected = [written(*stats(arm, None, "per_class_f1", name)) for arm in HEADS]
        assert cells(table, f"F1 {name} %") == expected, name
    assert cells(table, "macro F1 %") == [written(*stats(arm, None, "macro_f1")) for arm in HEADS]
    for other in ("combine+pos", "no_att_trans"):
        f1 = {
            arm: [json.loads(p.read_text())["macro_f1"] for p in seed_files(out, arm, arms)]
            for arm in (other, "combine")
        }
        per_seed = [f"{100 * (x - y):+.1f}" for x, y in zip(f1[other], f1["combine"], strict=True)]
        line = f"  expression macro F1 per seed, {other} - combine: " + ", ".join(per_seed)
        assert line in lines, other


def seed_files(out, arm: str, arms: dict) -> list:
    return [out / "runs" / arm / f"seed{s}" / "eval" / "metrics.json" for s in arms[arm]["seeds"]]
