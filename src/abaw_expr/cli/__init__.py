"""``abaw-expr``: one command line, one subcommand per step. No logic lives here: each
subcommand parses its arguments, calls one function and prints the result.

The commands live in one module per thing a user is doing (:mod:`.data`, :mod:`.train`,
:mod:`.evaluate`, :mod:`.videos`, :mod:`.demo`), each command's arguments beside what it runs
(:class:`~.command.Command`); arguments several commands share are in :mod:`.arguments`. A new
command is one more ``Command`` in its module's ``GROUP``; ``abaw-expr --help`` lists the
commands by group.
"""

from __future__ import annotations

import argparse
import logging
import sys

from abaw_expr.cli import data, demo, evaluate, train, videos
from abaw_expr.cli.command import Command, Group, check_inputs, labelled_inputs
from abaw_expr.errors import InputError

GROUPS: tuple[Group, ...] = (data.GROUP, train.GROUP, evaluate.GROUP, videos.GROUP, demo.GROUP)
"""The commands, by what a user is doing, in the order ``--help`` lists them."""

COMMANDS: dict[str, Command] = {c.name: c for group in GROUPS for c in group.commands}


class _GroupedHelpParser(argparse.ArgumentParser):
    """The top-level parser. Its help lists the commands in a section per :class:`Group`,
    where argparse would list them all in one block."""

    groups: tuple[Group, ...] = ()

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        formatter.add_text(self.description)
        for group in self.groups:
            formatter.start_section(group.title)
            formatter.add_arguments(
                [
                    argparse.Action([], label, help=text, metavar=label)
                    for label, text in group.listing()
                ]
            )
            formatter.end_section()
        formatter.start_section(self._optionals.title)
        formatter.add_arguments(self._optionals._group_actions)
        formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _GroupedHelpParser(
        prog="abaw-expr",
        description="Facial-expression classification on Aff-Wild2 (ABAW EXPR).",
        epilog="'abaw-expr COMMAND --help' shows a command's options.",
    )
    parser.groups = GROUPS
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=argparse.ArgumentParser
    )
    for command in COMMANDS.values():
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(func=command.run, input_paths=labelled_inputs(p, command))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        check_inputs(args)
        status = args.func(args)
    except InputError as err:
        print(f"abaw-expr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if type(err).__name__ != "NonFiniteLossError":
            raise
        print(f"abaw-expr {args.command}: stopped: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"abaw-expr {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
