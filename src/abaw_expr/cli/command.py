"""What a subcommand is (its arguments beside what it runs, and the paths it reads), how the
commands are grouped, and the check of every input path before a command runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from abaw_expr.errors import InputError


@dataclass(frozen=True)
class Command:
    """One subcommand.

    ``add_arguments`` declares its flags; ``run`` does the work and returns its exit status
    (None: 0). ``run`` imports what it needs (PyTorch, Lightning, dlib) itself, so that the
    command line starts in a fraction of a second. ``inputs`` names the arguments (by ``dest``)
    that are paths the command reads, each with its kind: ``file``, ``folder``, ``file or
    folder``, or ``weights`` (imagenet | none | a file). :func:`check_inputs` checks them all
    before ``run``, so that a missing input costs a fraction of a second and leaves nothing
    behind (a run folder holding config.yaml would refuse the corrected command).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Group:
    """Commands that serve one thing a user is doing, listed together by ``abaw-expr --help``.

    ``also`` lists, as (label, help), commands of other groups that serve this one too, such
    as ``predict --video`` among the commands for one's own videos; they come first.
    """

    title: str
    commands: tuple[Command, ...]
    also: tuple[tuple[str, str], ...] = ()

    def listing(self) -> list[tuple[str, str]]:
        """(label, help) of each line of the group in ``--help``."""
        return list(self.also) + [(c.name, c.help) for c in self.commands]


def labelled_inputs(
    parser: argparse.ArgumentParser, command: Command
) -> tuple[tuple[str, str, str], ...]:
    """``command.inputs`` as (dest, kind, how the user writes it: ``--images``, ``RUN``); an
    input that is no argument of the command fails here, when the parser is built."""
    by_dest = {action.dest: action for action in parser._actions}
    labelled = []
    for dest, kind in command.inputs:
        action = by_dest[dest]
        label = action.option_strings[-1] if action.option_strings else dest.upper()
        labelled.append((dest, kind, label))
    return tuple(labelled)


def check_inputs(args: argparse.Namespace) -> None:
    """An :class:`InputError` naming the argument and the path of the first input of
    ``args.command`` that is missing or of the wrong kind (see :attr:`Command.inputs`)."""
    if getattr(args, "calibration", None) is not None:
        from abaw_expr.cli.arguments import engine_of

        engine_of(args)  # --calibration: a folder, and only with --engine int8
    for name, kind, flag in getattr(args, "input_paths", ()):
        value = getattr(args, name, None)
        if kind == "weights":  # imagenet | pretrained | none | a file
            words = ("imagenet", "imagenet_v1", "imagenet_v2", "pretrained", "none")
            if value is None or value.strip().lower() in words:
                continue
            kind = "file"
        for path in value if isinstance(value, list) else [value]:
            if path is None:
                continue
            path = Path(path)
            if not path.exists():
                raise InputError(f"no such {kind} ({flag})", path)
            if kind == "file" and not path.is_file():
                raise InputError(f"is a folder, expected a file ({flag})", path)
            if kind == "folder" and not path.is_dir():
                raise InputError(f"is a file, expected a folder ({flag})", path)


def print_result(result: dict, as_json: bool, text: str) -> None:
    """``result`` as one line of JSON (``--json``), else ``text``."""
    print(json.dumps(result) if as_json else text)


def report_failures(command: str, failed: dict[str, str]) -> int:
    """One error line per failed video; the exit status (1 if any failed)."""
    for message in failed.values():
        print(f"abaw-expr {command}: error: {message}", file=sys.stderr)
    return 1 if failed else 0
