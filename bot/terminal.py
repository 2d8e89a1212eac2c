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


class StreamedAnswer:
    """Prints an LLM answer as it grows, one verified sentence at a time, then its quotes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.printed = ""

    def show(self, partial: Answer) -> None:
        """Print what `partial` adds to the text already printed (Answerer's on_progress)."""
        if not partial.text.startswith(self.printed):
            return  # never the case: verified sentences only ever add up
        new = partial.text[len(self.printed) :]
        self.console.print(Text(new, style="bold"), end="")
        self.console.file.flush()
        self.printed = partial.text

    def finish(self, answer: Answer) -> None:
        """The rest of the final answer, its note and its quotes."""
        if self.printed and answer.text.startswith(self.printed):
            self.console.print(Text(answer.text[len(self.printed) :], style="bold"))
            render_answer(self.console, answer, text_shown=True)
        else:
            if self.printed:
                self.console.print()
            render_answer(self.console, answer)
        self.printed = ""


def render_answer(console: Console, answer: Answer, *, text_shown: bool = False) -> None:
    """The answer line (unless already shown), then each quote as a block quote with its
    article and link."""
    style = "bold" if answer.answered else "yellow"
    if not text_shown:
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
