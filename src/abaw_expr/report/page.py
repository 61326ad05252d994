"""The building blocks of the report's pages (:mod:`.html`, :mod:`.compare`): a page built
section by section, its inline CSS, and how numbers are written on it."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from abaw_expr.tasks import percent_metric
from abaw_expr.writers import atomic_write_bytes, atomic_write_text

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1300px; margin: 1.5em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
.result { font-size: 1.1em; background: #f3f6fa; border-left: 4px solid #1f77b4; padding: .6em 1em; }
.skipped { color: #8a5a00; background: #fff7e6; padding: .3em .6em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .2em .6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: .9em; }
"""


def percent(f1: float | None) -> str:
    """How the report writes an F1: ``35.87 %``; ``-`` for none."""
    return "-" if f1 is None else f"{100 * f1:.2f} %"


def number(value: float | None) -> str:
    """How the report writes a CCC or a sum of track scores: ``0.4321``; ``-`` for none."""
    return "-" if value is None else f"{value:.4f}"


def score_text(metric: str, value: float | None) -> str:
    """A logged validation metric as the report writes it: F1s in percent, others plain."""
    return percent(value) if percent_metric(metric) else number(value)


def duration(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Page:
    """An HTML page built section by section; figures are embedded and saved in ``figure_dir``."""

    def __init__(self, title: str, figure_dir: Path):
        self.title = title
        self.figure_dir = figure_dir
        self.parts: list[str] = []
        self.figures: list[str] = []  # names written

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, markup: str, css_class: str = "") -> None:
        """``markup`` is HTML: escape any text from files before passing it."""
        attr = f' class="{css_class}"' if css_class else ""
        self.parts.append(f"<p{attr}>{markup}</p>")

    def skipped(self, text: str) -> None:
        self.paragraph("Skipped: " + html.escape(text), "skipped")

    def table(
        self, rows: list[list[str]], header: list[str] | None = None, align_numbers: bool = True
    ) -> None:
        def cell(tag: str, value: str) -> str:
            numeric = align_numbers and tag == "td" and value.removeprefix("-")[:1].isdigit()
            return f"<{tag}{' class=num' if numeric else ''}>{html.escape(value)}</{tag}>"

        lines = ["<table>"]
        if header:
            lines.append("<tr>" + "".join(cell("th", h) for h in header) + "</tr>")
        lines += ["<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows]
        self.parts.append("\n".join(lines + ["</table>"]))

    def figure(self, name: str, png: bytes, caption: str) -> None:
        atomic_write_bytes(self.figure_dir / f"{name}.png", png)
        self.figures.append(name)
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, path: Path) -> None:
        title = html.escape(self.title)
        head = f'<meta charset="utf-8"><title>{title}</title><style>{CSS}</style>'
        body = "\n".join([f"<h1>{title}</h1>", *self.parts])
        atomic_write_text(
            path, f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{body}\n</body></html>\n"
        )
