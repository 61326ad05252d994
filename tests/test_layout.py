"""The package's layering: the data side never depends on the model."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import abaw_expr.data


def test_no_data_module_imports_the_model_directly_or_indirectly():
    modules = [f"abaw_expr.data.{m.name}" for m in pkgutil.iter_modules(abaw_expr.data.__path__)]
    assert "abaw_expr.data.feature_cache" in modules and "abaw_expr.data.datamodule" in modules
    # A fresh interpreter per module: what one import drags in is not hidden by another's.
    for module in modules:
        code = (
            f"import sys, {module}\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('abaw_expr.model', "
            "'abaw_expr.extraction', 'abaw_expr.inference')))\n"
            "print(','.join(bad))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == "", f"{module} imports {out}"


def test_no_data_module_names_the_model_even_in_a_function_body():
    """The import-time check above misses imports inside functions; read the source too."""
    import ast
    from pathlib import Path

    for path in Path(abaw_expr.data.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
            elif isinstance(node, ast.Import):
                target = ",".join(a.name for a in node.names)
            else:
                continue
            for forbidden in ("..model", "abaw_expr.model", "..extraction", "..inference"):
                assert not target.startswith(forbidden), (
                    f"{path.name}:{node.lineno} imports {target}"
                )


def test_inference_commands_do_not_import_lightning_or_dynamo():
    """evaluate, predict, serve and export never train: importing Lightning (seconds on a small
    CPU) would only delay their first frame, and so would ``torch._dynamo`` (2 s), which
    torchvision imports unless :mod:`abaw_expr.torchvision_import` defers it."""
    entry_points = (
        "abaw_expr.cli",
        "abaw_expr.evaluation",
        "abaw_expr.video.predict",
        "abaw_expr.video.preprocess",
        "abaw_expr.serve",
        "abaw_expr.export",
    )
    for module in entry_points:
        code = (
            f"import sys, {module}\n"
            "print(','.join(sorted(m for m in ('lightning', 'pytorch_lightning', 'torchmetrics', "
            "'abaw_expr.model.module', 'abaw_expr.training', 'torch._dynamo') if m in sys.modules)))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == "", f"{module} imports {out}"
