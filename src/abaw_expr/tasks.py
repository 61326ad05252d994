"""ABAW's tasks: what each one is, in one place that every stage reads.

A *task* is what ABAW calls a track or a challenge: expressions (``expr``), valence-arousal
(``va``), action units (``au``). (A *track*, in this package, is a face followed through a
video: :mod:`abaw_expr.faces.tracking`.) Each :class:`Task` holds

- its name (the CLI's ``--tracks`` and the JSON's ``track``), the folder ABAW ships its
  annotations in, the columns of its files (their header) and so its width in the model's
  outputs;
- the value that marks an unannotated frame, and which frames of a label array are annotated;
- its validation metric keys, and the one that ranks it (:func:`best_epoch_key` picks the best epoch).

A new task is one entry in :data:`TASKS`, plus its parser (:mod:`abaw_expr.data.annotations`),
its loss (:mod:`abaw_expr.training.losses`) and its metric (:mod:`abaw_expr.evaluation.metrics`).
The label files themselves are read in :mod:`abaw_expr.data.annotations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
)
NUM_CLASSES = len(CLASS_NAMES)
HEADER = ",".join(CLASS_NAMES)
UNANNOTATED = -1  # an expression frame that is not annotated

AU_NAMES: tuple[str, ...] = (
    "AU1",
    "AU2",
    "AU4",
    "AU6",
    "AU7",
    "AU10",
    "AU12",
    "AU15",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
)
VA_NAMES: tuple[str, ...] = ("valence", "arousal")
VA_UNANNOTATED = -5.0  # in either column: the frame is not annotated
AU_UNANNOTATED = -1  # in every column: the frame is not annotated

SUM_SCORE = "val/score"  # several tasks: ABAW's sum of their scores ranks the epochs


@dataclass(frozen=True)
class Task:
    name: str  # "expr", "va" or "au": the CLI's and the JSON's name
    folders: tuple[str, ...]  # the folders ABAW has shipped the task's annotations in, newest last
    columns: tuple[str, ...]  # the header of its annotation and prediction files
    title: str
    unannotated: float  # the value that marks a frame (or a value) as not annotated
    annotated_rows: Callable  # labels (..., columns) -> bool (...); NumPy arrays or tensors
    score: str  # the validation key of its ABAW score
    logged: tuple[str, ...]  # every validation key its epochs log, the score last

    @property
    def folder(self) -> str:
        """The folder name ABAW3 used (the sample writes it)."""
        return self.folders[0]

    @property
    def header(self) -> str:
        return ",".join(self.columns)

    @property
    def width(self) -> int:
        """Its share of the model's outputs: one logit per class or AU, one value per column."""
        return len(self.columns)

    def annotated(self, values: np.ndarray) -> np.ndarray:
        """Boolean (frames,): which frames of a label array (or a tensor of labels, frames in
        its leading dimensions) are annotated for this task."""
        return self.annotated_rows(values)


EXPR = Task(
    "expr",
    ("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge"),  # ABAW5 renamed it
    CLASS_NAMES,
    "expression",
    UNANNOTATED,
    lambda labels: labels >= 0,
    "val/macro_f1",
    ("val/macro_f1",),
)
VA = Task(
    "va",
    ("VA_Estimation_Challenge",),
    VA_NAMES,
    "valence-arousal",
    VA_UNANNOTATED,
    lambda values: (values != VA_UNANNOTATED).all(-1),  # a single -5 leaves the frame out
    "val/ccc",
    ("val/ccc_valence", "val/ccc_arousal", "val/ccc"),
)
AU = Task(
    "au",
    ("AU_Detection_Challenge",),
    AU_NAMES,
    "action units",
    AU_UNANNOTATED,
    lambda values: values[..., 0] != AU_UNANNOTATED,  # the parser checks the whole row
    "val/au_f1",
    ("val/au_f1",),
)
TASKS: dict[str, Task] = {t.name: t for t in (EXPR, VA, AU)}


@dataclass(frozen=True)
class Challenge:
    """An ABAW challenge scored on several tasks at once, from files of its own."""

    name: str  # the JSON's "track"
    folder: str
    files: dict  # split -> the annotation file's name
    columns: tuple[str, ...]  # the annotation files' header
    submission_columns: tuple[str, ...]  # the submission's header (its last name spans 12 AUs)
    tasks: tuple[Task, ...]  # scored: P = the sum of their scores (SUM_SCORE in training)
    title: str


MTL = Challenge(
    "mtl",
    "MTL_Challenge",
    {
        "Train_Set": "training_set_annotations.txt",
        "Validation_Set": "validation_set_annotations.txt",
    },
    ("image", *VA_NAMES, "expression", *AU_NAMES),
    ("image", *VA_NAMES, "expression", "aus"),
    (VA, EXPR, AU),
    "multi-task (s-Aff-Wild2)",
)


def annotated(task: Task, values: np.ndarray) -> np.ndarray:
    """Boolean (frames,): which frames of a label array are annotated for ``task``."""
    return task.annotated(values)


def best_epoch_key(tasks) -> str:
    """The validation key that picks the best epoch of a model of ``tasks``: the paper's
    ``val/macro_f1`` for expressions alone, else ABAW's sum of the tasks' scores."""
    return EXPR.score if tuple(tasks) == (EXPR.name,) else SUM_SCORE


def percent_metric(key: str) -> bool:
    """Whether a validation key is an F1 (shown in percent) rather than a CCC or a sum."""
    return key in (EXPR.score, AU.score)
