"""Compound expressions (ABAW6 and ABAW7, C-EXPR-DB), zero-shot from the 8 expression
probabilities: the rule, the 7 classes in the challenge's order, and their names.

The challenge ships no training data, so each frame's compound class is derived from the
basic-expression probabilities (:data:`~abaw_expr.tasks.CLASS_NAMES`). Each compound is named by
two basic expressions; its score is the **mean of those two classes' probabilities**, and the
frame's class is the compound with the highest score (the first in the order below on a tie).
Neutral and Other belong to no compound: every frame gets a compound class, whatever theirs.

This is the SUN team's pair-wise rule for ABAW6 (their paper, arXiv 2403.12687, reports
22.01 % F1 on C-EXPR-DB's test set for their audio-visual system, zero-shot; the code is
github.com/ElenaRyumina/AVCER, ``get_compound_expression`` in ``src/data/utils.py``) in
its plain form: their sum with equal weights and no mask; a mean ranks the compounds exactly as
that sum does and keeps each score a probability-like number in [0, 1] for the CSV. Their
optional per-class weights and their mask (probabilities under 1/7 set to 0) were tuned on
their own models and data, so none is taken here. A product of the two probabilities would
be another reading; no public zero-shot result for it was found, and none was measured here
(this project has no C-EXPR-DB labels), so the published rule is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.tasks import CLASS_NAMES

# The challenge's order: class index 0..6 of the submission file (docs/data.md).
COMPOUND_NAMES: tuple[str, ...] = (
    "Fearfully Surprised",
    "Happily Surprised",
    "Sadly Surprised",
    "Disgustedly Surprised",
    "Angrily Surprised",
    "Sadly Fearful",
    "Sadly Angry",
)
NUM_COMPOUNDS = len(COMPOUND_NAMES)
# The submission file's columns after image_location, and the CSV's score columns.
COMPOUND_COLUMNS: tuple[str, ...] = tuple(n.replace(" ", "_") for n in COMPOUND_NAMES)

# Each compound's two basic expressions, by name (adverb first, then the adjective's class).
COMPONENTS: dict[str, tuple[str, str]] = {
    "Fearfully Surprised": ("Fear", "Surprise"),
    "Happily Surprised": ("Happiness", "Surprise"),
    "Sadly Surprised": ("Sadness", "Surprise"),
    "Disgustedly Surprised": ("Disgust", "Surprise"),
    "Angrily Surprised": ("Anger", "Surprise"),
    "Sadly Fearful": ("Sadness", "Fear"),
    "Sadly Angry": ("Sadness", "Anger"),
}
# (7, 2) indices into the 8 expression probabilities
COMPONENT_INDEX = np.array(
    [[CLASS_NAMES.index(c) for c in COMPONENTS[name]] for name in COMPOUND_NAMES]
)


def compound_scores(probabilities: np.ndarray) -> np.ndarray:
    """(..., 7) float32: each compound's score, the mean of its two classes' probabilities,
    from (..., 8) expression probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape[-1] != len(CLASS_NAMES):
        raise ValueError(
            f"expected {len(CLASS_NAMES)} expression probabilities, got {probabilities.shape}"
        )
    return probabilities[..., COMPONENT_INDEX].mean(-1)


def compound_classes(probabilities: np.ndarray) -> np.ndarray:
    """(...,) the compound class 0..6 of each frame (the first on a tie)."""
    return compound_scores(probabilities).argmax(-1)


def expression_probabilities(values: np.ndarray, tasks) -> np.ndarray:
    """The (..., 8) expression probabilities among a checkpoint's per-frame values (see
    :func:`~abaw_expr.inference.probabilities.frame_values`)."""
    if tuple(tasks) == ("expr",):
        return values
    from abaw_expr.model.temporal import task_slices  # here: score reads this module, no torch

    return values[..., task_slices(tasks)["expr"]]


def require_expression_head(tasks, checkpoint: Path | str) -> None:
    """Refuse compound expressions from a checkpoint that predicts no expression."""
    if "expr" not in tuple(tasks):
        raise InputError(
            "--compound needs a checkpoint with an expression head; this one predicts "
            + ", ".join(tasks),
            checkpoint,
        )
