"""The timeline plot of one video: the 8 class probabilities over time (stacked), with the
spans where the subject's face was not found shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import CLASS_NAMES
from ..writers import atomic_write

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


def _spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where ``flags`` is True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def plot_timeline(
    path: Path | str, time_s: np.ndarray, probs: np.ndarray, has_face: np.ndarray, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.2), dpi=100)
    t = np.asarray(time_s, np.float64)
    if len(t) == 1:
        t = np.array([t[0], t[0] + 1e-3])
        probs, has_face = np.repeat(probs, 2, 0), np.repeat(has_face, 2)
    ax.stackplot(t, probs.T, colors=CLASS_COLOURS, labels=CLASS_NAMES, linewidth=0)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
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
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
