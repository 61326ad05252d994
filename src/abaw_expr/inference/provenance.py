"""Where a checkpoint's model comes from, and whether it can mean anything on real faces.

``abaw-expr train`` writes a ``provenance`` entry into every checkpoint (plain data, so that
``torch.load(weights_only=True)`` reads it):

- ``data``: ``kind`` is ``synthetic sample`` (the labels, images or cached features lie in a
  folder that ``abaw-expr sample`` or the demo wrote: one holding its ``sample.json``) or
  ``annotations`` (anyone else's label files); ``folder``, the label folder's name (not its
  path, which may name the user), and ``label_files`` with ``files_sha256``, a hash of the
  sorted list of label files (relative path and size), which tells two data sets apart
  without holding them;
- ``backbone``: ``weights`` is ``imagenet`` (with ``version`` for ``imagenet_v1`` or
  ``_v2``), ``random`` (``none``) or ``file``, with the file's name and SHA-256 (a file is
  taken as trained weights: its hash is recorded, its content not judged);
- ``tasks``, ``code`` (package version and git commit, ``unknown`` outside a git checkout),
  ``validation`` (the validation scores of the epoch the checkpoint was written at) and
  ``epoch``.

A checkpoint written before this record existed reads as ``origin: unknown`` (its backbone,
from its config). :func:`model_warning` says when a model is a toy: trained on the synthetic
sample, or on features of a random backbone; the predicting commands print it once and put it
in their records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

from abaw_expr import __version__

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
SYNTHETIC = "synthetic sample"
IMAGENET = ("imagenet", "imagenet_v1", "imagenet_v2")  # model.backbone's names for them
MODEL_WARNING = (
    "this model has never seen a real face: its labels on real video are not meaningful "
    "(trained on {why}); see docs/videos.md#where-a-model-comes-from"
)


def git_commit() -> str:
    """The commit of the package's source, or ``unknown`` (an installed wheel, no git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else UNKNOWN
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN


def sample_root(path: Path | str | None) -> Path | None:
    """The synthetic sample that ``path`` lies in (the folder or one of its three parents holds
    the ``sample.json`` that :func:`abaw_expr.synthetic.sample.write_sample` writes last)."""
    if path is None:
        return None
    path = Path(path).resolve()
    for folder in [path, *path.parents][:4]:
        summary = folder / "sample.json"
        if summary.is_file():
            try:
                keys = json.loads(summary.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(keys, dict) and {"frames_per_video", "quirks", "splits"} <= keys.keys():
                return folder
    return None


def _cached_images_dir(features_dir: Path | str | None) -> str | None:
    """The image folder a feature cache was extracted from (recorded in its index)."""
    if features_dir is None:
        return None
    import numpy as np

    for index in sorted(Path(features_dir).glob("*/index.npz")):
        with np.load(index, allow_pickle=False) as data:
            if "images_dir" in data:
                return str(data["images_dir"])
    return None


def files_digest(folder: Path | str) -> tuple[int, str]:
    """How many label files (``*.txt``, ``*.csv``) ``folder`` holds, at any depth, and the
    SHA-256 of their sorted relative paths and sizes."""
    folder = Path(folder)
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in (".txt", ".csv") and p.is_file()
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}\n".encode())
    return len(files), digest.hexdigest()


def data_record(
    annotations_dir: Path | str,
    images_dir: Path | str | None = None,
    features_dir: Path | str | None = None,
) -> dict:
    """The ``data`` part of the record (see the module's text)."""
    sources = (annotations_dir, images_dir, _cached_images_dir(features_dir))
    synthetic = any(sample_root(p) is not None for p in sources)
    count, digest = files_digest(annotations_dir)
    return {
        "kind": SYNTHETIC if synthetic else "annotations",
        "folder": Path(annotations_dir).resolve().name,
        "label_files": count,
        "files_sha256": digest,
    }


def backbone_record(weights: str) -> dict:
    """The ``backbone`` part: ``imagenet``, ``random``, or a ``file`` with its SHA-256."""
    value = str(weights).strip()
    if value.lower() == "none":
        return {"weights": "random"}
    if value.lower() == "pretrained":  # the library's own download (timm's default tag)
        return {"weights": "pretrained"}
    if value.lower() in IMAGENET:
        return {
            "weights": "imagenet",
            **({"version": value.lower()} if value.lower() != "imagenet" else {}),
        }
    path = Path(value).expanduser()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"weights": "file", "file": path.name, "sha256": digest.hexdigest()}


def training_record(
    config,
    annotations_dir: Path | str,
    images_dir: Path | str | None = None,
    features_dir: Path | str | None = None,
) -> dict:
    """What a training run knows of its model before the first epoch (:func:`checkpoint_record`
    adds the validation scores)."""
    return {
        "data": data_record(annotations_dir, images_dir, features_dir),
        "backbone": {
            "architecture": config.model.backbone,
            **backbone_record(config.model.backbone_weights),
        },
        "tasks": list(config.model.tasks),
        "code": {"version": __version__, "git_commit": git_commit()},
    }


def read_provenance(checkpoint: dict) -> dict:
    """A checkpoint's record; ``origin: unknown`` for one written before records existed (its
    backbone then read off its config)."""
    record = checkpoint.get("provenance")
    if isinstance(record, dict):
        return record
    config = checkpoint.get("hyper_parameters", {}).get("config", {})
    weights = str(config.get("model", {}).get("backbone_weights", UNKNOWN))
    backbone = {"weights": UNKNOWN}
    if weights.lower() in ("none", "pretrained", *IMAGENET):
        backbone = backbone_record(weights)
    backbone["architecture"] = config.get("model", {}).get("backbone", "regnet_y_1_6gf")
    return {"origin": UNKNOWN, "data": {"kind": UNKNOWN}, "backbone": backbone}


def model_warning(record: dict) -> str | None:
    """The warning a toy model gets (trained on the synthetic sample, or with a random
    backbone); None for any other model, an unknown one included."""
    why = []
    if record.get("data", {}).get("kind") == SYNTHETIC:
        why.append("the synthetic sample's drawn faces")
    if record.get("backbone", {}).get("weights") == "random":
        why.append("features of a random backbone")
    return MODEL_WARNING.format(why=" and ".join(why)) if why else None


def format_provenance(record: dict) -> str:
    """The record as lines of text, for ``abaw-expr describe``."""
    data, backbone = record.get("data", {}), record.get("backbone", {})
    lines = []
    if record.get("origin") == UNKNOWN:
        lines.append("origin: unknown (a checkpoint written before checkpoints recorded it)")
    kind = data.get("kind", UNKNOWN)
    if kind == UNKNOWN:
        lines.append("data: unknown")
    else:
        lines.append(
            f"data: {kind}, folder {data.get('folder')!r}, {data.get('label_files')} label "
            f"files (sha256 {str(data.get('files_sha256'))[:16]})"
        )
    weights = backbone.get("weights", UNKNOWN)
    if weights == "file":
        weights = f"file {backbone.get('file')!r} (sha256 {str(backbone.get('sha256'))[:16]})"
    architecture = backbone.get("architecture", "regnet_y_1_6gf")
    lines.append(f"backbone: {architecture}, weights {weights}")
    if "tasks" in record:
        lines.append(f"tasks: {', '.join(record['tasks'])}")
    if "code" in record:
        code = record["code"]
        lines.append(f"code: abaw-expr {code.get('version')}, git {code.get('git_commit')}")
    if record.get("validation"):
        scores = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record["validation"].items()))
        lines.append(f"validation (epoch {record.get('epoch')}): {scores}")
    warning = model_warning(record)
    if warning:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def warn_if_toy(model) -> str | None:
    """Log :func:`model_warning` of a loaded model (``model.provenance``) once; return it."""
    warning = model_warning(getattr(model, "provenance", {}))
    if warning:
        log.warning("%s", warning)
    return warning


def model_fields(model) -> dict:
    """What a prediction's record says of its model: ``model`` (the provenance record) and
    ``model_warning`` (None for a model that is no toy)."""
    record = getattr(model, "provenance", {"origin": UNKNOWN})
    return {"model": record, "model_warning": model_warning(record)}
