"""Errors caused by the user's input; the CLI prints them as one line, without a traceback."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: a file, a folder, a setting. The message names the culprit."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


def require_file(path: Path | str, expected: str, missing: str = "no such file") -> Path:
    """``path`` as a Path if it is a file; else an InputError saying it is missing or a folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            missing if not path.exists() else f"is a folder, expected {expected}", path
        )
    return path


def require_dir(path: Path | str, expected: str, missing: str = "no such folder") -> Path:
    """``path`` as a Path if it is a folder; else an InputError saying it is missing or a file."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(missing if not path.exists() else f"is a file, expected {expected}", path)
    return path
