"""Rendering for the terminal: answers, quotes, ingest summaries and article tables (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.models import Answer
from index.ingest import IngestReport
from index.store import ArticleRecord


def render_answer(console: Console, answer: Answer) -> None:
    """The answer line, then each quote as a block quote with its article and link."""
    style = "bold" if answer.answered else "yellow"
    console.print(Text(answer.text, style=style))
    if answer.note:
        console.print(Text(answer.note, style="dim italic"))
    for c in answer.citations:
        source = Text(f"— {c.article.title or c.article.id}", style="cyan")
        if c.heading:
            source.append(f" · {c.heading}", style="dim")
        lines: list[Text] = [Text(c.quote), source]
        if c.link:
            lines.append(Text(c.link, style="blue underline"))
        elif c.article.path:
            lines.append(Text(f"{c.article.path} [{c.start}:{c.end}]", style="dim"))
        console.print(
            Panel(Group(*lines), title=f"[{c.n}]", title_align="left", border_style="dim")
        )


def render_ingest(console: Console, report: IngestReport) -> None:
    console.print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"removed {report.removed}, skipped {len(report.skipped)} — "
        f"{report.passages} passages in the index ({report.seconds:.1f} s)"
    )
    for skipped in report.skipped:
        console.print(f"  skipped {escape(skipped.path)}: {escape(skipped.reason)}", style="yellow")


def render_articles(console: Console, records: list[ArticleRecord]) -> None:
    table = Table("id", "title", "author", "date", "passages", "path")
    for r in records:
        table.add_row(r.id, r.title, r.author or "", r.published or "", str(r.passages),
                      r.path or "")
    console.print(table)
