"""One person's predictions for every frame of a video: what :mod:`.predict` gives and
:mod:`.outputs` writes (apart from both, so that neither imports the other's work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from abaw_expr.evaluation.evaluate import task_predictions
from abaw_expr.inference.compound import compound_classes, compound_scores
from abaw_expr.model.temporal import task_slices
from abaw_expr.video.tracks import VideoFaces


@dataclass
class VideoPrediction:
    """One person's per-frame values: the checkpoint's ``tasks`` side by side, as
    :func:`~abaw_expr.inference.probabilities.window_probabilities` gives them (expression probabilities,
    valence and arousal, AU probabilities). A track the checkpoint lacks reads as None."""

    name: str
    faces: VideoFaces
    values: np.ndarray  # (n, width) float32
    seconds: dict[str, float] = field(default_factory=dict)  # decode, faces, model, write
    tasks: tuple[str, ...] = ("expr",)
    au_thresholds: np.ndarray | None = None  # fitted by evaluate --fit-au-thresholds; else 0.5
    compound: bool = False  # predict --compound: its outputs add the compound expressions

    def _part(self, task: str) -> np.ndarray | None:
        if task not in self.tasks:
            return None
        if self.tasks == ("expr",):
            return self.values
        return self.values[:, task_slices(self.tasks)[task]]

    def track(self, task: str) -> np.ndarray | None:
        """The track's ABAW predictions (see :func:`~abaw_expr.evaluation.evaluate.task_predictions`)."""
        return {"expr": self.labels, "va": self.va, "au": self.aus}[task]

    def _predicted(self, task: str) -> np.ndarray | None:
        if task not in self.tasks:
            return None
        return task_predictions(self.values, self.tasks, task, self.au_thresholds)

    @property
    def probabilities(self) -> np.ndarray | None:
        """(n, 8) expression probabilities."""
        return self._part("expr")

    @cached_property
    def labels(self) -> np.ndarray | None:
        """(n,) expression class per frame."""
        return self._predicted("expr")

    @cached_property
    def va(self) -> np.ndarray | None:
        """(n, 2) valence and arousal in [-1, 1]."""
        return self._predicted("va")

    @property
    def au_probabilities(self) -> np.ndarray | None:
        """(n, 12) probability of each AU of :data:`~abaw_expr.tasks.AU_NAMES`."""
        return self._part("au")

    @cached_property
    def aus(self) -> np.ndarray | None:
        """(n, 12) int8: 1 where an AU is on."""
        return self._predicted("au")

    @cached_property
    def compound_scores(self) -> np.ndarray | None:
        """(n, 7) each compound's score (:mod:`abaw_expr.inference.compound`), where asked."""
        probabilities = self.probabilities
        return (
            None if not self.compound or probabilities is None else compound_scores(probabilities)
        )

    @property
    def compound_labels(self) -> np.ndarray | None:
        """(n,) compound class 0..6 per frame, where asked."""
        probabilities = self.probabilities
        return (
            None if not self.compound or probabilities is None else compound_classes(probabilities)
        )
