"""The package's layering: imports only go down the stages (``LAYERS``), with no circles; the
data side never depends on the model; the predicting commands never import Lightning."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import abaw_expr.data


def test_no_data_module_imports_a_later_stage_directly_or_indirectly():
    """What importing a data module drags in at run time, whatever the source says (the source
    is read by :func:`test_imports_only_go_down`)."""
    modules = [f"abaw_expr.data.{m.name}" for m in pkgutil.iter_modules(abaw_expr.data.__path__)]
    assert "abaw_expr.data.feature_cache" in modules and "abaw_expr.data.datamodule" in modules
    later = tuple(f"abaw_expr.{name}" for name in LAYERS[LAYERS.index("data") + 1 :])
    # A fresh interpreter per module: what one import drags in is not hidden by another's.
    for module in modules:
        code = (
            f"import sys, {module}\n"
            f"bad = sorted(m for m in sys.modules if m.startswith({later!r}))\n"
            "print(','.join(bad))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == "", f"{module} imports {out}"


def test_inference_commands_do_not_import_lightning_or_dynamo():
    """evaluate, predict, serve and export never train: importing Lightning (seconds on a small
    CPU) would only delay their first frame, and so would ``torch._dynamo`` (2 s), which
    torchvision imports unless :mod:`abaw_expr.data.torchvision_import` defers it."""
    entry_points = (
        "abaw_expr.cli",
        "abaw_expr.evaluation.evaluate",
        "abaw_expr.video.predict",
        "abaw_expr.video.preprocess",
        "abaw_expr.serve",
        "abaw_expr.inference.export",
    )
    for module in entry_points:
        code = (
            f"import sys, {module}\n"
            "print(','.join(sorted(m for m in ('lightning', 'pytorch_lightning', 'torchmetrics', "
            "'abaw_expr.training.module', 'abaw_expr.training.loop', 'torch._dynamo') if m in sys.modules)))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == "", f"{module} imports {out}"


# The import order, from the bottom up: a module imports only modules of its own layer or of
# a layer below (docs/development.md draws it). The top-level modules are layers of their own.
LAYERS = (
    "abaw_expr",  # the package's __init__: its version, nothing else
    "errors",
    "writers",
    "tasks",
    "config",
    "data",
    "faces",
    "model",
    "inference",
    "evaluation",
    "report",
    "training",
    "video",
    "serve",
    "synthetic",
    "cli",
)
SOURCE = Path(abaw_expr.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``abaw_expr`` module that ``path`` imports, at the top or inside a function."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "abaw_expr" and target in MODULES and target != name:
                found.append((node.lineno, target))
    return found


MODULES = {_module_name(p): p for p in SOURCE.rglob("*.py")}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1] if len(parts) > 1 else parts[0])


def test_every_top_level_name_has_a_layer():
    names = {m.split(".")[1] for m in MODULES if "." in m}
    assert names <= set(LAYERS), f"not in LAYERS: {sorted(names - set(LAYERS))}"


def test_at_most_five_modules_loose_at_the_top():
    loose = sorted(p.name for p in SOURCE.glob("*.py"))
    assert len(loose) <= 5, loose


# "track" is a face followed through a video; ABAW's idea is a task (tasks.py)
FACE_TRACKING = {"faces/tracking.py", "video/tracks.py"}


def test_only_the_face_tracking_modules_are_named_after_tracks():
    named = sorted(
        str(p.relative_to(SOURCE))
        for p in SOURCE.rglob("*.py")
        if "track" in p.stem and str(p.relative_to(SOURCE)) not in FACE_TRACKING
    )
    assert named == []


def test_imports_only_go_down():
    upward = [
        f"{MODULES[m].relative_to(SOURCE.parent)}:{line} imports {target}"
        for m in MODULES
        for line, target in _imports(MODULES[m])
        if _layer(target) > _layer(m)
    ]
    assert upward == []


def test_no_import_circles():
    """Counting imports inside functions: a circle there is still two modules that need each
    other."""
    graph = {m: {t for _, t in _imports(p)} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(" -> ".join([*path[path.index(t) :], m, t] if t in path else [m, t]))
            elif t not in state:
                visit(t, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert circles == []


MAX_FUNCTION_LINES = 80  # from the ``def`` line to the last, inclusive: one sitting's reading
MAX_FILE_LINES = 500


def _too_long(source: Path) -> list[str]:
    """Every function (or method) longer than MAX_FUNCTION_LINES and every file longer than
    MAX_FILE_LINES under ``source``, as ``path:line name (N lines)``."""
    found = []
    for path in sorted(source.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(source.parent)
        if (lines := len(text.splitlines())) > MAX_FILE_LINES:
            found.append(f"{where} ({lines} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_over_80_lines_and_no_file_over_500():
    too_long = _too_long(SOURCE)
    assert too_long == [], "too long:\n" + "\n".join(too_long)
