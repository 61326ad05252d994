"""A checkpoint's AU thresholds: fitted by ``evaluate --fit-au-thresholds``, kept beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from abaw_expr.errors import InputError
from abaw_expr.tasks import AU_NAMES


def au_thresholds_file(checkpoint: Path | str) -> Path:
    """Where ``evaluate --fit-au-thresholds`` keeps a checkpoint's AU thresholds: beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".au_thresholds.json")


def load_au_thresholds(checkpoint: Path | str) -> np.ndarray | None:
    """The checkpoint's fitted AU thresholds, or None (then 0.5)."""
    path = au_thresholds_file(checkpoint)
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        values = np.array([float(saved["thresholds"][name]) for name in AU_NAMES])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"not a file of AU thresholds ({err})", path) from None
    if not ((values > 0) & (values < 1)).all():
        raise InputError("AU thresholds must lie in (0, 1)", path)
    return values
