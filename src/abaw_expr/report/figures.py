"""The report's figures, each drawn from plain data and returned as PNG bytes.

Figures are made with matplotlib's object API on the Agg canvas: no pyplot, no global state,
no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from abaw_expr.report.runs import EpochLog
from abaw_expr.report.timeline import CLASS_COLOURS
from abaw_expr.tasks import CLASS_NAMES, EXPR, VA_NAMES, VA_UNANNOTATED

Series = tuple[Sequence[float], Sequence[float]]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def training_curves(
    log: EpochLog,
    score: str = EXPR.score,
    ylabel: str = "macro F1",
    title: str = "validation macro F1",
) -> bytes:
    """Training and validation loss per epoch (left), the validation ``score`` that picks the
    best epoch per epoch (right, the best starred).

    An epoch without a value (NaN or not logged) breaks the line instead of being bridged."""
    names = ("train/loss_epoch", "val/loss", score)
    epochs = sorted({e for name in names for e in log.values.get(name, {})})

    def values(name: str) -> np.ndarray:
        by_epoch = log.values.get(name, {})
        return np.array([by_epoch.get(e, np.nan) for e in epochs])

    fig = _figure(10, 3.6)
    loss_ax, f1_ax = fig.subplots(1, 2, sharex=True)
    for name, label in (("train/loss_epoch", "training loss"), ("val/loss", "validation loss")):
        if name in log.values:
            loss_ax.plot(epochs, values(name), marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if score in log.values:
        f1 = values(score)
        f1_ax.plot(epochs, f1, marker="o", color="tab:green", label=score)
        best = int(np.nanargmax(f1))
        label = f"best {f1[best]:.4f} (epoch {epochs[best]})"
        f1_ax.plot(epochs[best], f1[best], "*", markersize=14, color="tab:red", label=label)
    f1_ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    for ax in (loss_ax, f1_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return _png(fig)


def epoch_curves(curves: dict[str, Series], title: str, ylabel: str) -> bytes:
    """Validation metrics of one track per epoch, one line each (``{label: (epochs, values)}``)."""
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    for label, (epochs, values) in curves.items():
        ax.plot(epochs, values, marker="o", label=label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def lr_schedule(curves: dict[str, Series]) -> bytes:
    """Learning rate per epoch (log scale), one line per logged parameter group."""
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    for name, (epochs, lrs) in curves.items():
        ax.step(epochs, lrs, where="post", marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="learning-rate schedule")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _png(fig)


def lr_finder(lrs: Sequence[float], losses: Sequence[float], suggested: float | None) -> bytes:
    """Lightning's learning-rate finder: loss against learning rate, the choice marked."""
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    ax.plot(lrs, losses)
    if suggested is not None:
        ax.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested {suggested:.3g}")
        ax.legend()
    ax.set(xlabel="learning rate", ylabel="loss", xscale="log", title="learning-rate finder")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def confusion(cm: Sequence[Sequence[int]]) -> bytes:
    """The confusion matrix: counts (left) and rows normalised to 1 (right)."""
    counts = np.asarray(cm, dtype=np.int64)
    totals = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    fig = _figure(13, 5.6)
    for ax, matrix, title, fmt in zip(
        fig.subplots(1, 2),
        (counts, normalised),
        ("counts", "row-normalised (recall on the diagonal)"),
        ("{:d}", "{:.2f}"),
        strict=True,
    ):
        ax.imshow(matrix, cmap="Blues")
        top = matrix.max() or 1
        for (row, col), value in np.ndenumerate(matrix):
            colour = "white" if value > 0.6 * top else "black"
            ax.text(col, row, fmt.format(value), ha="center", va="center", fontsize=8, color=colour)
        ticks = range(len(CLASS_NAMES))
        ax.set_xticks(ticks, CLASS_NAMES, rotation=45, ha="right")
        ax.set_yticks(ticks, CLASS_NAMES)
        ax.set(xlabel="predicted", ylabel="true", title=title)
    return _png(fig)


def per_class(f1: Sequence[float], frames: Sequence[int]) -> bytes:
    """Per-class F1 (left) beside the number of evaluated frames of each class (right)."""
    fig = _figure(10, 3.8)
    f1_ax, count_ax = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(CLASS_NAMES))
    f1_ax.barh(y, f1, color=CLASS_COLOURS)
    f1_ax.axvline(float(np.mean(f1)), color="black", linestyle="--", label="macro F1")
    f1_ax.set(xlim=(0, 1), xlabel="F1", title="per-class F1")
    f1_ax.set_yticks(y, CLASS_NAMES)
    f1_ax.invert_yaxis()
    f1_ax.legend(loc="lower right")
    total = max(int(np.sum(frames)), 1)
    count_ax.barh(y, frames, color=CLASS_COLOURS)
    for i, n in enumerate(frames):
        count_ax.annotate(f" {n} ({100 * n / total:.1f} %)", (n, i), va="center", fontsize=8)
    count_ax.set(xlabel="frames", title="class frequency (evaluated frames)")
    count_ax.set_xlim(0, max(max(frames, default=0), 1) * 1.35)
    for ax in (f1_ax, count_ax):
        ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def timelines(videos: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> bytes:
    """Per video (name, true labels, predicted labels): the two label sequences as colour bands;
    frames without a label (-1) are white."""
    cmap = ListedColormap(CLASS_COLOURS).with_extremes(bad="white")
    fig = _figure(12, 0.6 + 1.1 * len(videos))
    axes = np.atleast_1d(fig.subplots(len(videos), 1, squeeze=False)[:, 0])
    for ax, (name, truth, predicted) in zip(axes, videos, strict=True):
        bands = np.ma.masked_less(np.stack([truth, predicted]).astype(np.int64), 0)
        n = bands.shape[1]
        ax.imshow(
            bands,
            cmap=cmap,
            vmin=-0.5,
            vmax=len(CLASS_NAMES) - 0.5,
            aspect="auto",
            interpolation="nearest",
            extent=(0.5, n + 0.5, 1.5, -0.5),
        )
        annotated = truth >= 0
        agreement = (
            float(np.mean(truth[annotated] == predicted[annotated])) if annotated.any() else 0
        )
        ax.set_yticks([0, 1], ["true", "predicted"])
        ax.set_title(
            f"{name}: {n} frames, {100 * agreement:.1f} % of annotated frames right",
            fontsize=9,
            loc="left",
        )
    axes[-1].set_xlabel("frame")
    handles = [Patch(color=c, label=n) for c, n in zip(CLASS_COLOURS, CLASS_NAMES, strict=True)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(CLASS_NAMES), fontsize=8)
    return _png(fig)


def va_over_time(videos: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> bytes:
    """Per video (name, true (frames, 2), predicted (frames, 2)): valence (left) and arousal
    (right) per frame, truth against prediction; frames without a label (-5) break the line."""
    fig = _figure(12, 0.6 + 2.0 * len(videos))
    axes = fig.subplots(len(videos), 2, squeeze=False, sharey=True)
    for row, (name, truth, predicted) in zip(axes, videos, strict=True):
        frames = np.arange(1, len(truth) + 1)
        shown_truth = np.where(truth == VA_UNANNOTATED, np.nan, truth)
        for j, (ax, what) in enumerate(zip(row, VA_NAMES, strict=True)):
            ax.plot(frames, shown_truth[:, j], color="black", linewidth=1.2, label="true")
            ax.plot(frames, predicted[:, j], color="tab:orange", linewidth=1.0, label="predicted")
            ax.set(ylim=(-1.05, 1.05))
            ax.set_title(f"{name}: {what}", fontsize=9, loc="left")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    return _png(fig)


def au_f1(f1: Sequence[float], names: Sequence[str]) -> bytes:
    """F1 of each action unit as bars, their mean (the track's score) dashed."""
    fig = _figure(8, 3.4)
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, f1, color="tab:blue")
    ax.axhline(float(np.mean(f1)), color="black", linestyle="--", label="mean F1")
    ax.set_xticks(x, names)
    ax.set(ylim=(0, 1), ylabel="F1", title="F1 per action unit")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper right")
    return _png(fig)


def compare_f1_curves(
    curves: dict[str, Series],
    ylabel: str = "macro F1",
    title: str = "validation macro F1 per epoch",
) -> bytes:
    """A validation metric (macro F1 by default) per epoch of several runs on one plot."""
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    for name, (epochs, values) in curves.items():
        ax.plot(epochs, values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)
