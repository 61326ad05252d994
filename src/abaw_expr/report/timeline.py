"""The timeline plot of one video, with the spans where the subject's face was not found shaded.

A checkpoint of the expression track alone: the 8 class probabilities over time (stacked), one
panel, as it always was. A checkpoint of other tracks: one panel per track, on one time axis:
the expression probabilities (stacked), valence and arousal (lines in [-1, 1]), and which
action units are on (one row per AU, a bar where it is predicted present).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abaw_expr.tasks import AU_NAMES, CLASS_NAMES
from abaw_expr.writers import atomic_write

CLASS_COLOURS = (
    "#9e9e9e",  # Neutral
    "#d62728",  # Anger
    "#8c9a2b",  # Disgust
    "#9467bd",  # Fear
    "#f0a30a",  # Happiness
    "#1f77b4",  # Sadness
    "#17becf",  # Surprise
    "#e377c2",  # Other
)
VA_COLOURS = ("#2a9d8f", "#e76f51")  # valence, arousal
AU_COLOUR = "#3b5b92"


def _spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where ``flags`` is True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _shade_no_face(ax, t: np.ndarray, has_face: np.ndarray, step: float) -> None:
    for start, end in _spans(~np.asarray(has_face, bool)):
        ax.axvspan(
            t[start] - step / 2,
            t[end - 1] + step / 2,
            facecolor="white",
            alpha=0.75,
            hatch="//",
            edgecolor="#555555",
            linewidth=0,
            label="no face" if start == _spans(~has_face)[0][0] else None,
        )


def plot_timeline(
    path: Path | str,
    time_s: np.ndarray,
    probs: np.ndarray | None,
    has_face: np.ndarray,
    title: str,
    va: np.ndarray | None = None,
    aus: np.ndarray | None = None,
) -> None:
    """``probs``: (n, 8) expression probabilities, or None without the expression track;
    ``va``: (n, 2) valence and arousal; ``aus``: (n, 12) 0/1 per AU of
    :data:`~abaw_expr.tasks.AU_NAMES`. With ``probs`` alone, the one-panel figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(time_s, np.float64)
    has_face = np.asarray(has_face, bool)
    if len(t) == 1:
        t = np.array([t[0], t[0] + 1e-3])
        probs, va, aus = (None if x is None else np.repeat(x, 2, 0) for x in (probs, va, aus))
        has_face = np.repeat(has_face, 2)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    panels = [k for k, x in (("expr", probs), ("va", va), ("au", aus)) if x is not None]
    heights = {"expr": 3.2, "va": 2.2, "au": 2.6}
    if panels == ["expr"]:
        fig, ax = plt.subplots(figsize=(12, 3.2), dpi=100)
        axes = [ax]
    else:
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(12, max(3.2, sum(heights[k] for k in panels))),
            dpi=100,
            sharex=True,
            gridspec_kw={"height_ratios": [heights[k] for k in panels]},
            squeeze=False,
        )
        axes = list(axes[:, 0])
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "expr":
            ax.stackplot(t, probs.T, colors=CLASS_COLOURS, labels=CLASS_NAMES, linewidth=0)
            ax.set_ylim(0, 1)
            ax.set_ylabel("probability")
        elif panel == "va":
            ax.axhline(0, color="#999999", linewidth=0.8)
            for k, name in enumerate(("valence", "arousal")):
                ax.plot(t, va[:, k], color=VA_COLOURS[k], linewidth=1.4, label=name)
            ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel("valence, arousal")
        else:
            for k in range(aus.shape[1]):
                bars = [(t[s] - step / 2, t[e - 1] - t[s] + step) for s, e in _spans(aus[:, k] > 0)]
                ax.broken_barh(bars, (k - 0.4, 0.8), facecolors=AU_COLOUR, linewidth=0)
            ax.set_yticks(range(len(AU_NAMES)), AU_NAMES, fontsize=7)
            ax.set_ylim(len(AU_NAMES) - 0.5, -0.5)
            ax.set_ylabel("action units on")
        _shade_no_face(ax, t, has_face, step)
        ax.set_xlim(t[0], t[-1])
        if panel != "au":
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
