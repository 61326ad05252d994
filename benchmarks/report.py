"""What every benchmark script prints beside its figures: the machine, torch and its threads."""

from __future__ import annotations

import json
import os
import platform


def environment() -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def emit(result: dict, as_json: bool, width: int = 32) -> None:
    """One JSON object, or one ``key value`` line per figure."""
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:{width}s} {value}")
