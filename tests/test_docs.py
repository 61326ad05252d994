"""The README and the guide stay true: every command they show parses, every link resolves.

Which text counts as a command (the rule the pages are written to):

* every line of a fenced block marked ``bash``, ``sh``, ``shell`` or ``console``, joined
  across trailing ``\\`` continuations, with a leading ``$ `` prompt and ``#`` comments
  removed; other fences (``text`` output, data layouts) are not commands, and a ``$ abaw-expr``
  line in one fails the test (a command where nothing would check it);
* every inline code span that starts with ``abaw-expr `` (a span may wrap across lines; a
  ``\\|`` in a table is ``|``);
* in both, the shell's operators (``|``, ``&&``, ``||``, ``;``, ``&``) split a line into
  commands, redirections (``>``, ``2>`` ...) and their targets are dropped, leading
  ``VAR=value`` words and ``do`` / ``then`` are skipped, and each piece that starts with
  ``abaw-expr`` is one command.

Notation inside a command: ``<name>`` is a placeholder, replaced by ``x``; ``$VAR`` and
``${VAR}`` are replaced by ``1``; ``[`` ``]`` around options mark them optional and are
removed (the options inside are checked too); a word ``a|b`` (no spaces) offers alternatives
and each one is checked; a word ``...`` is dropped. Write numbers, not names, for options that
take numbers (``--seeds 3``, not ``--seeds N``), and spell options in full (argparse would
take ``--htm`` for ``--html``; the check does not). ``abaw-expr NAME`` with nothing after it
names a command: only that the command exists is checked.

Inline spans that name a command without ``abaw-expr`` (``predict --video``) are checked more
loosely: every ``--option`` in them must be one of that command's options.

Links: every ``[text](target)`` and image between the README, ``docs/*.md`` and
``benchmarks/RESULTS.md`` (outside code; the text may wrap) must name an existing file in the
repository and, with ``#anchor`` on a Markdown page, one of its headings by GitHub's rule.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from abaw_expr.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SHELL_FENCES = {"bash", "sh", "shell", "console"}
OPERATORS = {"|", "||", "&&", ";", "&"}
REDIRECTIONS = {">", ">>", "<", "2>", "2>>", "&>", "2>&1", "1>&2", ">&2"}
MIN_COMMANDS = 60  # the pages hold more (88 on 2026-12-02); fewer means the extractor lost its way


def pages() -> list[Path]:
    """The README, the guide and the benchmark records: the pages that link to each other."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "benchmarks" / "RESULTS.md",
    ]


def command_pages() -> list[Path]:
    """The pages whose commands are checked: the README and the guide (RESULTS.md records
    commands as they were run, at their commits)."""
    return [p for p in pages() if p.name != "RESULTS.md"]


@dataclass
class Command:
    where: str  # "path:line"
    text: str  # as written (continuations joined)


FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def blocks(markdown: str) -> tuple[list[tuple[int, str, list[str]]], str]:
    """The fenced blocks, as (first line, language, lines), and the prose: the text with every
    fenced line blanked, so that offsets in it still give line numbers."""
    found, prose = [], []
    fence = None
    for number, line in enumerate(markdown.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            found.append((number + 1, opening.group(2).lower(), []))
            prose.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            else:
                found[-1][2].append(line)
            prose.append("")
        else:
            prose.append(line)
    return found, "\n".join(prose)


def paragraphs(prose: str) -> list[tuple[int, str]]:
    """(first line, text) of each run of non-blank lines: code spans and links never cross a
    blank line."""
    found, number = [], 1
    for chunk in re.split(r"(\n[ \t]*\n)", prose):
        if chunk.strip() and not re.fullmatch(r"\n[ \t]*\n", chunk):
            found.append((number, chunk))
        number += chunk.count("\n")
    return found


def inline_spans(markdown: str) -> list[tuple[int, str]]:
    """(line, text) of every inline code span outside fences; a span may wrap across lines (its
    whitespace is collapsed), and a table's escaped ``\\|`` is ``|``."""
    found = []
    for first, text in paragraphs(blocks(markdown)[1]):
        for match in INLINE.finditer(text):
            span = " ".join(match.group(2).split()).replace("\\|", "|")
            found.append((first + text.count("\n", 0, match.start()), span))
    return found


def extract_commands(markdown: str, name: str = "<text>") -> list[Command]:
    """Every ``abaw-expr ...`` command written in ``markdown`` (see the module's rule)."""
    commands: list[Command] = []
    fenced, _ = blocks(markdown)
    for first, language, lines in fenced:
        if language not in SHELL_FENCES:
            for offset, line in enumerate(lines):
                if line.lstrip().startswith("$ abaw-expr"):
                    raise ValueError(f"{name}:{first + offset}: a command in a non-shell block")
            continue
        pending, pending_line = "", first
        for offset, line in enumerate(lines):
            text = line.strip()
            if not pending:
                pending_line = first + offset
                text = text.removeprefix("$ ")
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            pending += text
            commands += split_shell(pending, f"{name}:{pending_line}", comments=True)
            pending = ""
    for number, span in inline_spans(markdown):
        if span.startswith("abaw-expr ") or span == "abaw-expr":
            commands += split_shell(span, f"{name}:{number}", comments=False)
    return sorted(commands, key=lambda c: int(c.where.rsplit(":", 1)[1]))


def split_shell(text: str, where: str, comments: bool) -> list[Command]:
    """The ``abaw-expr`` commands in one shell line."""
    text = re.sub(r"\$\{\w+\}|\$\w+", "1", text)
    try:
        words = shlex.split(text, comments=comments)
    except ValueError as err:
        raise ValueError(f"{where}: cannot split {text!r}: {err}") from err
    pieces: list[list[str]] = [[]]
    skip_target = False
    for word in words:
        if skip_target:
            skip_target = False
            continue
        if word in OPERATORS:
            pieces.append([])
        elif word in REDIRECTIONS:
            skip_target = not word.endswith(("&1", "&2"))
        elif re.match(r"^[12&]?>", word):
            continue  # '>file', '2>/dev/null'
        elif word.endswith(";") and word != ";":
            pieces[-1].append(word[:-1])
            pieces.append([])
        else:
            pieces[-1].append(word)
    commands = []
    for piece in pieces:
        while piece and (re.match(r"^\w+=", piece[0]) or piece[0] in {"do", "then", "time"}):
            piece = piece[1:]
        if piece and piece[0] == "abaw-expr":
            commands.append(Command(where, shlex.join(piece)))
    return commands


def expand(command: Command) -> list[list[str]]:
    """The argument lists to parse for one command: placeholders filled, each alternative."""
    words = []
    for word in shlex.split(command.text)[1:]:
        word = re.sub(r"<[^<>]+>", "x", word)
        if word.startswith("[") and word != "[":
            word = word[1:]
        if word.endswith("]") and word != "]":
            word = word[:-1]
        if word in {"[", "]", "..."}:
            continue
        words.append(word.split("|") if "|" in word else [word])
    return [list(choice) for choice in itertools.product(*words)]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def parse_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """argparse's complaint about ``argv``, or None when it parses."""
    if len(argv) == 1 and not argv[0].startswith("-"):  # `abaw-expr NAME`: a command's name
        return None if argv[0] in subcommands(parser) else f"no command {argv[0]!r}"
    if not argv:
        return None
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exit:
            if exit.code not in (0, None):  # --help exits 0
                return stderr.getvalue().strip().splitlines()[-1]
    return None


def strict_parser() -> argparse.ArgumentParser:
    """The command line's parser, taking no abbreviation: the pages spell options in full."""
    parser = build_parser()
    for p in [parser, *subcommands(parser).values()]:
        p.allow_abbrev = False
    return parser


def broken_commands(commands: list[Command]) -> list[str]:
    parser = strict_parser()
    failures = []
    for command in commands:
        for argv in expand(command):
            error = parse_error(parser, argv)
            if error:
                failures.append(f"{command.where}: `{command.text}`: {error}")
    return failures


def all_commands() -> list[Command]:
    return [
        command
        for page in command_pages()
        for command in extract_commands(page.read_text(encoding="utf-8"), rel(page))
    ]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_command_in_the_readme_and_the_guide_parses():
    commands = all_commands()
    assert len(commands) >= MIN_COMMANDS, f"only {len(commands)} commands found"
    failures = broken_commands(commands)
    assert not failures, "commands that do not parse:\n" + "\n".join(failures)


def test_every_command_is_shown_somewhere():
    """Each of the CLI's commands appears in the README or the guide with its arguments."""
    shown = {shlex.split(c.text)[1] for c in all_commands() if len(shlex.split(c.text)) > 2}
    missing = set(subcommands(build_parser())) - shown
    assert not missing, f"commands never shown with arguments: {sorted(missing)}"


def test_the_readme_shows_the_quick_start():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme


MADE_UP = """\
# A page

Run `abaw-expr stats --images faces --annotations labels --json` first, then:

```bash
$ abaw-expr train --images faces --annotations labels \\
    --out runs/a --epochs 3   # a comment --not-a-flag
for k in 1 2; do OMP_NUM_THREADS=2 abaw-expr predict --checkpoint <ckpt> \\
    --video in/ --out out/ --shard $k/2 & done; wait
abaw-expr score --predictions p --annotations a --json > scores.json && cat scores.json
abaw-expr evaluate --checkpoint c --images i --annotations a --out o --frobnicate
```

```text
abaw-expr demo on the embedded synthetic sample (output, not a command)
```

| command | what |
|---|---|
| `abaw-expr predict --checkpoint C --video V --out O [--faces all\\|one] [--smooth 9]` | videos |
| `abaw-expr sample --out s --videos N` | numbers are numbers |
| `abaw-expr score` | a name |
| `abaw-expr scores` | a name that is not a command |
| `abaw-expr compare runs/a runs/b --htm c.html` | an abbreviation |

A span may wrap: `abaw-expr stats --images faces
--annotations labels --jsn`.
"""


def test_the_extractor_on_a_made_up_page():
    commands = extract_commands(MADE_UP, "made-up.md")
    assert [c.where for c in commands] == [
        "made-up.md:3",
        "made-up.md:6",
        "made-up.md:8",
        "made-up.md:10",
        "made-up.md:11",
        "made-up.md:20",
        "made-up.md:21",
        "made-up.md:22",
        "made-up.md:23",
        "made-up.md:24",
        "made-up.md:26",
    ]
    assert (
        commands[1].text
        == "abaw-expr train --images faces --annotations labels --out runs/a --epochs 3"
    )
    assert "--shard 1/2" in commands[2].text and "&" not in commands[2].text
    assert commands[3].text.endswith("--json")  # the redirection and `cat` are gone
    assert expand(commands[5]) == [
        [
            "predict",
            "--checkpoint",
            "C",
            "--video",
            "V",
            "--out",
            "O",
            "--faces",
            face,
            "--smooth",
            "9",
        ]
        for face in ("all", "one")
    ]
    failures = broken_commands(commands)
    assert [f.split(":")[1] for f in failures] == ["11", "21", "23", "24", "26"]
    assert "--frobnicate" in failures[0]
    assert "invalid int value: 'N'" in failures[1]
    assert "scores" in failures[2]
    assert "--htm" in failures[3]
    assert "--jsn" in failures[4]


def test_a_command_in_an_unchecked_block_is_refused():
    with pytest.raises(ValueError, match="page.md:2"):
        extract_commands("```\n$ abaw-expr stats --imagez x\n```\n", "page.md")


def test_options_named_without_abaw_expr_exist():
    """`predict --video`, `train --features` in prose: each option belongs to that command."""
    commands = subcommands(build_parser())
    options = {
        name: {o for a in p._actions for o in a.option_strings} for name, p in commands.items()
    }
    failures = []
    for page in command_pages():
        for number, span in inline_spans(page.read_text(encoding="utf-8")):
            words = span.split()
            if len(words) > 1 and words[0] in commands and words[1].startswith("--"):
                for word in words[1:]:
                    flag = word.split("=")[0].strip("[]")
                    if flag.startswith("--") and flag not in options[words[0]]:
                        failures.append(f"{rel(page)}:{number}: {words[0]} has no {flag}")
    assert not failures, "\n".join(failures)


# Links


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup gone, lower case, punctuation dropped (but - and
    _), each space a hyphen."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\*{1,2}(\S(?:.*?\S)?)\*{1,2}", r"\1", text)  # _x_ is left: x86_64
    text = text.strip().lower()
    kept = "".join(
        ch
        for ch in text
        if ch in " -_" or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"
    )
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor, repeated ones numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in blocks(markdown)[1].splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link and image outside code; the text of a link may
    wrap across lines."""
    found = []
    for first, text in paragraphs(blocks(markdown)[1]):
        text = INLINE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for match in LINK.finditer(text):
            found.append((first + text.count("\n", 0, match.start()), match.group(1)))
    return found


def broken_links(page: Path, markdown: str) -> list[str]:
    failures = []
    for number, target in links(markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{rel(page)}:{number}: ({target})"
        if not file.exists():
            failures.append(f"{where} no such file")
        elif ROOT not in file.parents and file != ROOT:
            failures.append(f"{where} leaves the repository")
        elif (
            anchor
            and file.suffix == ".md"
            and anchor not in anchors(file.read_text(encoding="utf-8"))
        ):
            failures.append(f"{where} no heading #{anchor} in {rel(file)}")
    return failures


def test_every_link_between_the_pages_resolves():
    failures = []
    count = 0
    for page in pages():
        text = page.read_text(encoding="utf-8")
        count += len(links(text))
        failures += broken_links(page, text)
    assert count >= 100, f"only {count} links found"
    assert not failures, "broken links:\n" + "\n".join(failures)


def test_every_guide_page_is_reachable_from_the_readme():
    """Following links from the README reaches every page of docs/."""
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached or page.suffix != ".md" or not page.is_file():
            continue
        reached.add(page)
        for _, target in links(page.read_text(encoding="utf-8")):
            path = target.partition("#")[0]
            if path and not re.match(r"^[a-z][a-z0-9+.-]*:", path):
                todo.append((page.parent / path).resolve())
    missing = [rel(p) for p in (ROOT / "docs").glob("*.md") if p.resolve() not in reached]
    assert not missing, f"guide pages no link leads to: {missing}"


def test_the_link_checker_on_made_up_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Speed, and scaling (GPUs)\n\n## `predict --video`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#speed-and-scaling-gpus) [ok](docs/a.md#predict---video)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#speed) ![pic](docs/a.png) [a link\n"
        "that wraps](docs/a.md#wrapped)\n"
        "`[not a link](docs/c.md)` [web](https://example.org/x)\n"
    )
    failures = broken_links(page, page.read_text())
    assert [f.split(": ")[1] for f in failures] == [
        "(docs/b.md) no such file",
        "(docs/a.md#speed) no heading #speed in docs/a.md",
        "(docs/a.png) no such file",
        "(docs/a.md#wrapped) no heading #wrapped in docs/a.md",
    ]


def test_github_slugs():
    assert github_slug("What happens when") == "what-happens-when"
    assert github_slug("The recipe (defaults of `train`)") == "the-recipe-defaults-of-train"
    assert (
        github_slug("ABAW's other tracks: valence-arousal") == "abaws-other-tracks-valence-arousal"
    )
    assert github_slug("2026-11-27, x86_64, 2 cores") == "2026-11-27-x86_64-2-cores"
    assert github_slug("Mean ± std") == "mean--std"


def test_the_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines"


# The figures the pages quote, each recorded once in RESULTS.md's table "The figures the docs
# quote": the row's first words -> the pattern of a quote on a page (its groups written as the
# table writes the value) and the pages not searched for it: speed.md is the page of every
# speed figure, each dated, on several machines.
FIGURES = {
    "the demo's own run": (r"[Tt]he demo's own run took (\d+ min \d+ s)", "{0}", ()),
    "the demo summary the README shows": (r"summary of (commit [0-9a-f]{7,})", "{0}", ()),
    "the test suite": (r"(\d+) tests took (\d+ min \d+ s)", "{0} tests in {1}", ()),
    "`predict --video`": (
        r"`predict --video`[^.]*?(\d+(?:\.\d+)?) frames/s",
        "{0} frames/s",
        ("speed.md",),
    ),
}


def recorded_figures() -> dict[str, str]:
    """RESULTS.md's table of the figures the docs quote: row title -> value."""
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    section = text.split("## The figures the docs quote", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): cells[1].strip() for cells in rows[1:]}


def quoted_figures(pages_: list[Path]) -> list[tuple[str, str, str]]:
    """(figure, value as quoted, page) for every quote of a FIGURES figure on ``pages_``."""
    found = []
    for page in pages_:
        text = " ".join(page.read_text(encoding="utf-8").split())  # quotes may wrap
        for figure, (pattern, form, skipped) in FIGURES.items():
            for match in re.finditer(pattern, text) if page.name not in skipped else ():
                found.append((figure, form.format(*match.groups()), page.name))
    return found


def figure_disagreements(pages_: list[Path], recorded: dict[str, str]) -> list[str]:
    table = {next(t for t in recorded if t.startswith(f)): f for f in FIGURES}
    values = {figure: recorded[title] for title, figure in table.items()}
    problems = [
        f"{page}: {figure} {value!r}, recorded {values[figure]!r}"
        for figure, value, page in quoted_figures(pages_)
        if value != values[figure]
    ]
    quoted = {figure for figure, _, _ in quoted_figures(pages_)}
    problems += [f"{figure}: quoted nowhere" for figure in FIGURES if figure not in quoted]
    # a copy in other words: a count of tests, or a duration on the demo's pages, that is none
    # of the recorded figures
    counts = {v.split()[0] for v in recorded.values() if v.endswith(" s") and " tests " in v}
    durations = {m for v in recorded.values() for m in re.findall(r"\d+ min \d+ s", v)}
    for page in pages_:
        text = " ".join(page.read_text(encoding="utf-8").split())
        problems += [
            f"{page.name}: {n} tests"
            for n in re.findall(r"\b(\d+) tests\b", text)
            if n not in counts
        ]
        if page.name in ("README.md", "demo.md"):
            problems += [
                f"{page.name}: {d}"
                for d in re.findall(r"\b\d+(?:\.\d+)? min(?: \d+ s)?\b", text)
                if d not in durations
            ]
    return problems


def test_every_figure_the_pages_quote_is_the_recorded_one():
    """Demo time, demo summary, test count and time, `predict --video` speed: each recorded
    once (RESULTS.md, with machine and date); a page that quotes one quotes that."""
    recorded = recorded_figures()
    assert all(any(t.startswith(f) for t in recorded) for f in FIGURES), recorded
    assert figure_disagreements(command_pages(), recorded) == []


def test_the_figure_check_on_made_up_pages(tmp_path):
    recorded = {
        "the demo's own run (x)": "2 min 40 s",
        "the demo summary the README shows": "commit abcdef1",
        "the test suite (x)": "954 tests in 9 min 47 s",
        "`predict --video`, x": "79.9 frames/s",
    }
    readme = tmp_path / "README.md"
    readme.write_text(
        "The demo's own run took 2 min 40 s. The summary of commit abcdef1:\n"
        "the 954 tests took 9 min\n47 s. `predict --video` runs 79.9 frames/s.\n"
    )
    assert figure_disagreements([readme], recorded) == []
    demo = tmp_path / "demo.md"
    demo.write_text("The demo's own run took 3 min 15 s; about 5.5 min with the install.\n")
    other = tmp_path / "videos.md"
    other.write_text(
        "the 910 tests; so `predict --video`\nran 58 frames/s, the summary of commit 81220dd\n"
    )
    assert figure_disagreements([readme, demo, other], recorded) == [
        "demo.md: the demo's own run '3 min 15 s', recorded '2 min 40 s'",
        "videos.md: the demo summary the README shows 'commit 81220dd', recorded 'commit abcdef1'",
        "videos.md: `predict --video` '58 frames/s', recorded '79.9 frames/s'",
        "demo.md: 3 min 15 s",
        "demo.md: 5.5 min",
        "videos.md: 910 tests",
    ]
    nowhere = [x for x in figure_disagreements([other], recorded) if "quoted nowhere" in x]
    assert nowhere == ["the demo's own run: quoted nowhere", "the test suite: quoted nowhere"]
