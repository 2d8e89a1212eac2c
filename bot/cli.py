"""The `dossier` command: ingest, articles, ask, chat, bot, eval (thin over the core)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.errors import DossierError

if TYPE_CHECKING:
    from bot.factory import Dossier

app = typer.Typer(
    help="Ask questions of a collection of news articles; every quote is checked verbatim.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich's help renderer (markdown-it, rich.traceback...) was most of
    # the time `dossier --help` took.
    rich_markup_mode=None,
)
console = Console()
errors = Console(stderr=True)


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command, handed to it in the click context."""

    config: Path | None
    data_dir: Path | None


@app.callback()
def main_options(
    context: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (TOML).")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="DOSSIER_DATA_DIR", help="Where the index lives."),
    ] = None,
) -> None:
    """Global options."""
    context.obj = GlobalOptions(config, data_dir)


def _dossier(context: typer.Context) -> Dossier:
    # Imported here: `dossier --help` should not pay for Chroma, BM25 and the model code.
    from bot.factory import Dossier
    from bot.logs import configure_logging
    from bot.settings import load_settings

    options = context.find_object(GlobalOptions) or GlobalOptions(None, None)
    settings = load_settings(options.config, data_dir=options.data_dir)
    configure_logging(settings.log.format, logging.WARNING)
    return Dossier(settings)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


@app.command()
def ingest(
    context: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Folders, files or JSONL.")] = None,
    prune: Annotated[bool, typer.Option(help="Remove articles whose files are gone.")] = False,
    rebuild: Annotated[bool, typer.Option(help="Drop the index and build it anew.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Index articles (default: the corpus folder); unchanged ones cost nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    show = not as_json and errors.is_terminal
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=errors, transient=True, disable=not show,
    ) as bar:
        task = bar.add_task("indexing", total=None)
        report = _dossier(context).ingest(
            paths, prune=prune, rebuild=rebuild,
            progress=lambda _item: bar.advance(task),
            on_calibrate=lambda passages: bar.update(
                task, description=f"indexing (tuning the int8 model on {passages} passages, once)"
            ),
        )
    if as_json:
        _print_json(report.to_json())
    else:
        from bot.terminal import render_ingest

        render_ingest(console, report)


@app.command()
def articles(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the indexed articles."""
    records = sorted(_dossier(context).store.records().values(), key=lambda r: (r.path or "", r.id))
    if as_json:
        _print_json([
            {"id": r.id, "title": r.title, "author": r.author, "published": r.published,
             "url": r.url, "passages": r.passages, "path": r.path}
            for r in records
        ])
        return
    from bot.terminal import render_articles

    render_articles(console, records)


@app.command()
def ask(
    context: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer one question from the articles, with verified quotes."""
    if not question.strip():
        raise DossierError("the question is empty")
    answer = _dossier(context).answerer.ask(question)
    if as_json:
        _print_json(answer.to_json())
        return
    from bot.terminal import render_answer

    render_answer(console, answer)


@app.command()
def chat(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One question per input line, one `ask --json` object per line.",
    )] = False,
) -> None:
    """A conversation in the terminal; reads one question per line when piped."""
    from bot.terminal import StreamedAnswer

    conversation = _dossier(context).conversation()
    streamed = StreamedAnswer(console)
    interactive = sys.stdin.isatty() and not as_json
    if interactive:
        console.print("Ask about the articles (empty line or Ctrl-D to quit).", style="dim")
    while True:
        try:
            line = console.input("[bold]? [/bold]") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if not interactive and line == "":
            break  # end of input
        question = line.strip()
        if not question:
            if interactive:
                break
            continue
        if as_json:
            _print_json(conversation.ask(question).to_json())
            sys.stdout.flush()  # a script reads each answer before it sends the next line
            continue
        if not interactive:
            console.print(f"? {question}", style="bold", markup=False, highlight=False)
        streamed.finish(conversation.ask(question, on_progress=streamed.show))


@app.command(name="bot")
def run_bot(context: typer.Context) -> None:
    """Run the Telegram bot (needs TELEGRAM_BOT_TOKEN)."""
    from bot.telegram.app import run

    run(_dossier(context))


@app.command(name="eval")
def evaluate_questions(
    context: typer.Context,
    questions: Annotated[Path, typer.Argument(help="Questions JSONL (question, answers, "
                                                   "gold_articles).")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Articles to ingest first.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Ingest --corpus, then measure retrieval and answers against QUESTIONS."""
    from bot.evaluate import evaluate, load_questions

    items = load_questions(questions)  # a bad file fails before the slow ingest
    dossier = _dossier(context)
    dossier.ingest([corpus])
    report = evaluate(dossier, items)
    if as_json:
        _print_json(report.to_json())
        return
    from rich.table import Table

    table = Table("metric", "value", title=f"{questions.name} over {corpus.name}")
    for name, value in report.rows():
        table.add_row(name, value)
    console.print(table)


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit status 1."""
    try:
        app()
    except DossierError as exc:
        # soft_wrap: rich would otherwise break a message longer than the console (80
        # columns when piped) into several lines; scripts rely on one line.
        errors.print(
            f"dossier: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
