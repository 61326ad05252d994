"""The ABAW expression metric: macro F1 over the 8 classes on every annotated frame.

Per-class F1 of a class that is neither in the truth nor in the predictions is 0, as in
scikit-learn's ``f1_score(..., labels=range(8), average="macro", zero_division=0)``, which is
what the ABAW organisers' scoring script calls.
"""

from __future__ import annotations

import logging

import numpy as np

from .classes import CLASS_NAMES, NUM_CLASSES

log = logging.getLogger(__name__)


def absent_classes(labels: np.ndarray) -> list[str]:
    """Names of the classes that no annotated frame of ``labels`` has."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=NUM_CLASSES)
    return [name for name, count in zip(CLASS_NAMES, counts, strict=True) if count == 0]


def warn_absent_classes(labels: np.ndarray, where: str) -> list[str]:
    """Warn (once per call) about classes absent from ``labels``; returns their names."""
    absent = absent_classes(labels)
    if absent:
        log.warning(
            "%s: no annotated frame of %s; as in ABAW's scoring its F1 is 0 "
            "(zero_division=0), so macro F1 cannot exceed %d/8",
            where,
            ", ".join(absent),
            NUM_CLASSES - len(absent),
        )
    return absent


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """8x8 counts, rows = true class, columns = predicted class, frames with label -1 left out."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ")
    keep = labels >= 0
    if labels.size and (labels.min() < -1 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must be -1..{NUM_CLASSES - 1}")
    kept = predictions[keep]
    if kept.size and (kept.min() < 0 or kept.max() >= NUM_CLASSES):
        raise ValueError(f"predictions must be 0..{NUM_CLASSES - 1}")
    flat = labels[keep] * NUM_CLASSES + predictions[keep]
    return np.bincount(flat, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def f1_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2 TP / (2 TP + FP + FN); 0 where that is 0/0."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    denominator = 2 * tp + (cm.sum(0) - tp) + (cm.sum(1) - tp)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def expression_scores(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """``macro_f1``, ``per_class_f1`` (by class name), ``frames`` and the confusion matrix."""
    cm = confusion_matrix(labels, predictions)
    f1 = f1_from_confusion(cm)
    return {
        "macro_f1": float(f1.mean()),
        "per_class_f1": {n: float(x) for n, x in zip(CLASS_NAMES, f1, strict=True)},
        "frames": int(cm.sum()),
        "confusion_matrix": cm.tolist(),
        "absent_classes": [n for n, row in zip(CLASS_NAMES, cm, strict=True) if row.sum() == 0],
    }
