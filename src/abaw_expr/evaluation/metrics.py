"""The ABAW expression metric: macro F1 over the 8 classes on every annotated frame.

Per-class F1 of a class that is neither in the truth nor in the predictions is 0, as in
scikit-learn's ``f1_score(..., labels=range(8), average="macro", zero_division=0)``, which is
what the ABAW organisers' scoring script calls.
"""

from __future__ import annotations

import logging

import numpy as np

from abaw_expr.tasks import AU, AU_NAMES, CLASS_NAMES, NUM_CLASSES, VA

log = logging.getLogger(__name__)


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


def concordance(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Lin's concordance correlation coefficient with population moments (ABAW's VA metric):
    2 cov(x, y) / (var x + var y + (mean x - mean y)^2); 0 where that is 0/0."""
    x = np.asarray(truth, dtype=np.float64)
    y = np.asarray(predicted, dtype=np.float64)
    if x.size == 0:
        return 0.0
    mx, my = x.mean(), y.mean()
    covariance = ((x - mx) * (y - my)).mean()
    denominator = x.var() + y.var() + (mx - my) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else 0.0


def va_scores(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """CCC of valence and of arousal over the annotated frames (no ``-5``); ``score`` is their
    mean. ``labels`` and ``predictions`` are (frames, 2)."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 2)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
    keep = VA.annotated(labels)
    valence = concordance(labels[keep, 0], predictions[keep, 0])
    arousal = concordance(labels[keep, 1], predictions[keep, 1])
    return {
        "ccc_valence": valence,
        "ccc_arousal": arousal,
        "score": (valence + arousal) / 2,
        "frames": int(keep.sum()),
    }


def binary_f1(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 of each column of 0/1 arrays (frames, columns); 0 where 2 TP + FP + FN is 0."""
    truth = np.asarray(truth) == 1
    predicted = np.asarray(predicted) == 1
    tp = (truth & predicted).sum(0).astype(np.float64)
    denominator = 2 * tp + (~truth & predicted).sum(0) + (truth & ~predicted).sum(0)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def au_scores(labels: np.ndarray, predictions: np.ndarray, names: tuple[str, ...]) -> dict:
    """F1 of each action unit over the annotated frames (not a row of ``-1``); ``score`` is
    their mean. ``labels`` and ``predictions`` are (frames, len(names)) of 0/1."""
    labels = np.asarray(labels).reshape(-1, len(names))
    predictions = np.asarray(predictions).reshape(-1, len(names))
    keep = AU.annotated(labels)
    f1 = binary_f1(labels[keep], predictions[keep])
    return {
        "score": float(f1.mean()),
        "f1_per_au": {n: float(x) for n, x in zip(names, f1, strict=True)},
        "frames": int(keep.sum()),
    }


def task_scores(task_name: str, labels: np.ndarray, predictions: np.ndarray) -> dict:
    """The ABAW metric of one track: ``track``, ``score``, ``frames`` and the track's details
    (EXPR keeps :func:`expression_scores`' keys, with ``score`` = ``macro_f1``)."""
    if task_name == "expr":
        scores = expression_scores(labels, predictions)
        scores["score"] = scores["macro_f1"]
    elif task_name == "va":
        scores = va_scores(labels, predictions)
    elif task_name == "au":
        scores = au_scores(labels, predictions, AU_NAMES)
    else:
        raise ValueError(f"unknown track {task_name!r}")
    return {"track": task_name, **scores}


def abaw_sum(scores_by_task: dict[str, float]) -> float:
    """ABAW's multi-task figure: mean CCC + expression macro F1 + AU mean F1, over the tracks
    given."""
    return float(sum(scores_by_task.values()))


def mtl_scores(truth: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict:
    """ABAW's multi-task figure P_MTL = mean CCC of valence and arousal + expression macro F1
    over the 8 classes + mean F1 over the 12 AUs, each over the rows annotated for it.
    ``truth`` and ``predicted`` map ``va`` (rows, 2), ``expr`` (rows,) and ``au`` (rows, 12),
    with the annotation files' markers in ``truth``."""
    va = va_scores(truth["va"], predicted["va"])
    expr = expression_scores(truth["expr"], predicted["expr"])
    au = au_scores(truth["au"], predicted["au"], AU_NAMES)
    return {
        "track": "mtl",
        "score": va["score"] + expr["macro_f1"] + au["score"],
        "frames": int(len(truth["expr"])),
        "ccc_valence": va["ccc_valence"],
        "ccc_arousal": va["ccc_arousal"],
        "ccc": va["score"],
        "f1_expr": expr["macro_f1"],
        "f1_au": au["score"],
        "frames_va": va["frames"],
        "frames_expr": expr["frames"],
        "frames_au": au["frames"],
        "per_class_f1": expr["per_class_f1"],
        "confusion_matrix": expr["confusion_matrix"],
        "f1_per_au": au["f1_per_au"],
    }
