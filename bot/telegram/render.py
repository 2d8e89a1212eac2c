"""What the Telegram bot shows: answers, article lists, summaries and refusals, within limits."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram.constants import MessageLimit

from bot import prompts
from bot.errors import DossierError, IndexNotBuilt, StoreUnavailable
from bot.factory import IngestLocked
from bot.models import Answer, ArticleRef, Citation
from bot.safety import LINK_LIKE
from bot.settings import TelegramSettings
from bot.telegram.access import Verdict

if TYPE_CHECKING:  # types only: rendering needs neither Chroma nor the model
    from bot.factory import Upload
    from index.ingest import IngestReport
    from index.store import ArticleRecord

# Telegram's limit is on UTF-16 code units of the text left after parsing the HTML.
MAX_MESSAGE_LENGTH = int(MessageLimit.MAX_TEXT_LENGTH)
ARTICLES_PER_PAGE = 10  # ten lines of at most ~330 characters each fit one message
_MAX_TITLE_CHARS = 200
_MAX_URL_CHARS = 2048
_HELP_TITLES = 10
_BLOCK_SEPARATOR = "\n\n"

# Where a too-long text may be cut, best first: paragraphs, lines, sentences, words.
_CUTS = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?:(?<=[.!?…。])|(?<=[.!?…。][\"'”’)\]]))\s+"),
    re.compile(r"\s+"),
)
_TAG = re.compile(r"<[^>]*>")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Text for an HTML message: &, < and > escaped (quotes need no escaping outside tags)."""
    return html.escape(text, quote=False)


def inert(text: str) -> str:
    """Outside text (articles, an LLM) for an HTML message: escaped, and every span Telegram
    would link by itself (URL, domain, e-mail, @username) set as <code>, which it never
    links: a hostile article cannot plant a clickable link, and the quote stays verbatim."""
    pieces: list[str] = []
    position = 0
    for match in LINK_LIKE.finditer(text):
        pieces.append(escape(text[position : match.start()]))
        pieces.append(f"<code>{escape(match.group())}</code>")
        position = match.end()
    pieces.append(escape(text[position:]))
    return "".join(pieces)


def link_like_spans(text: str) -> list[tuple[int, int]]:
    """[offset, length) in UTF-16 units of each link-like span of plain `text` (for code
    entities when a message goes without HTML)."""
    return [(utf16_len(text[: m.start()]), utf16_len(m.group()))
            for m in LINK_LIKE.finditer(text)]


def visible_text(html_text: str) -> str:
    """What Telegram shows for our HTML: tags dropped, entities decoded.

    Only valid for HTML made here, where every literal "<" in text is escaped.
    """
    return html.unescape(_TAG.sub("", html_text))


def telegram_length(html_text: str) -> int:
    """The length Telegram checks against its limit: the parsed text, in UTF-16 units."""
    return utf16_len(visible_text(html_text))


def fits(html_text: str, limit: int = MAX_MESSAGE_LENGTH) -> bool:
    """Conservative: the raw HTML (never shorter than the parsed text) must fit too."""
    return utf16_len(html_text) <= limit and telegram_length(html_text) <= limit


def safe_url(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL fit for a link, else None (shown as text)."""
    if not url or len(url) > _MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def link(text: str, url: str | None) -> str:
    """`text` escaped, linked to `url` when that is a safe http(s) URL."""
    target = safe_url(url)
    if target is None:
        return inert(text)
    return f'<a href="{html.escape(target, quote=True)}">{escape(text)}</a>'


def _short(text: str, limit: int = _MAX_TITLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_to_fit(text: str, wrap: Callable[[str], str], limit: int = MAX_MESSAGE_LENGTH,
                 level: int = 0) -> list[str]:
    """Cut `text` into pieces (substrings, trimmed) such that each `wrap(inert(piece))` fits,
    cutting at the best boundary available: paragraph, line, sentence, word, character."""
    text = text.strip()
    if not text:
        return []
    if fits(wrap(inert(text)), limit):
        return [text]
    if level == len(_CUTS):
        return _hard_split(text, wrap, limit)
    units: list[tuple[int, int]] = []
    start = 0
    for gap in _CUTS[level].finditer(text):
        if gap.start() > start:
            units.append((start, gap.start()))
        start = gap.end()
    if start < len(text):
        units.append((start, len(text)))
    pieces: list[str] = []
    current: tuple[int, int] | None = None
    for unit in units:
        if current is not None:
            joined = (current[0], unit[1])
            if fits(wrap(inert(text[joined[0] : joined[1]])), limit):
                current = joined
                continue
            pieces.append(text[current[0] : current[1]])
            current = None
        if fits(wrap(inert(text[unit[0] : unit[1]])), limit):
            current = unit
        else:
            pieces.extend(split_to_fit(text[unit[0] : unit[1]], wrap, limit, level + 1))
    if current is not None:
        pieces.append(text[current[0] : current[1]])
    return pieces


def _hard_split(text: str, wrap: Callable[[str], str], limit: int) -> list[str]:
    """Last resort for a "word" longer than a message: the longest prefixes that fit."""
    pieces = []
    while text:
        low, high = 1, len(text)
        while low < high:  # largest prefix length that fits
            middle = (low + high + 1) // 2
            if fits(wrap(inert(text[:middle])), limit):
                low = middle
            else:
                high = middle - 1
        pieces.append(text[:low])
        text = text[low:]
    return pieces


def pack(blocks: Sequence[str], limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Join whole blocks (each a complete HTML fragment that fits) into as few messages as
    fit; a message never ends inside a tag or an entity because blocks are never cut."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}{_BLOCK_SEPARATOR}{block}" if current else block
        if fits(candidate, limit):
            current = candidate
            continue
        if current:
            messages.append(current)
        current = block
    if current:
        messages.append(current)
    return messages


def _text_blocks(text: str, limit: int, wrap: Callable[[str], str] = lambda s: s) -> list[str]:
    return [wrap(inert(piece)) for piece in split_to_fit(text, wrap, limit)]


def citation_source(citation: Citation) -> str:
    """The article title, linked to the quote's place (or the article) when a URL is safe."""
    title = _short(citation.article.title or citation.article.id)
    return link(title, safe_url(citation.link) or safe_url(citation.article.url))


def quote_blocks(citation: Citation, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """One closed <blockquote> per part: the number and source, then the quote's text.

    A quote too long for one message is cut at sentence, then word boundaries; every part
    carries its own header, so each message reads on its own.
    """
    source = citation_source(citation)
    first = f"<b>[{citation.n}]</b> {source}"
    later = f"<b>[{citation.n}]</b> {source} {escape(prompts.TG_QUOTE_CONTINUED)}"

    def wrap_with(header: str) -> Callable[[str], str]:
        return lambda body: f"<blockquote>{header}\n{body}</blockquote>"

    # Measure every part against the longer header so any of them may carry either.
    parts = split_to_fit(citation.quote, wrap_with(later), limit)
    return [
        wrap_with(first if i == 0 else later)(inert(part)) for i, part in enumerate(parts)
    ]


def render_answer(answer: Answer, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The answer line, its note in italics, then each quote as a numbered blockquote."""
    blocks = _text_blocks(answer.text, limit)
    if answer.note:
        blocks += _text_blocks(answer.note, limit, lambda body: f"<i>{body}</i>")
    for citation in answer.citations:
        blocks += quote_blocks(citation, limit)
    return pack(blocks, limit) or [escape(prompts.CANNOT_ANSWER)]


def render_help(records: Sequence[ArticleRecord], bot_username: str, *,
                greeting: bool = False) -> str:
    """What the bot knows (how many articles, the first titles) and how to ask it."""
    titles = sorted((r.title or r.id for r in records), key=str.casefold)
    lines = [escape(prompts.TG_GREETING)] if greeting else []
    if titles:
        lines.append(escape(prompts.TG_KNOWS.format(count=len(titles),
                                                    s="" if len(titles) == 1 else "s")))
        lines += [f"• {inert(_short(t))}" for t in titles[:_HELP_TITLES]]
        if len(titles) > _HELP_TITLES:
            lines.append(escape(prompts.TG_MORE_ARTICLES.format(count=len(titles) - _HELP_TITLES)))
    else:
        lines.append(escape(prompts.TG_NO_ARTICLES))
    lines.append("")
    lines.append(escape(prompts.TG_HOW_TO_ASK.format(bot="@" + bot_username)))
    return "\n".join(lines)


def page_count(total: int, per_page: int = ARTICLES_PER_PAGE) -> int:
    return max(1, -(-total // per_page))


def render_articles_page(records: Sequence[ArticleRecord], page: int,
                         per_page: int = ARTICLES_PER_PAGE) -> str:
    """One page of the numbered article list (pages count from 1; out of range is clamped),
    each title linked to its article when it has a safe URL."""
    if not records:
        return escape(prompts.TG_NO_ARTICLES)
    ordered = sorted(records, key=lambda r: ((r.title or r.id).casefold(), r.id))
    pages = page_count(len(ordered), per_page)
    page = min(max(page, 1), pages)
    lines = [f"<b>{escape(prompts.TG_ARTICLES_HEADER.format(count=len(ordered)))}</b>"]
    first = (page - 1) * per_page
    for number, record in enumerate(ordered[first : first + per_page], first + 1):
        lines.append(_article_line(number, record))
    if pages > 1:
        lines.append(f"<i>{escape(prompts.TG_ARTICLES_PAGE.format(page=page, pages=pages))}</i>")
    return "\n".join(lines)


def _article_line(number: int, record: ArticleRecord | ArticleRef) -> str:
    byline = ", ".join(part for part in (record.author, record.published) if part)
    line = f"{number}. {link(_short(record.title or record.id), record.url)}"
    if byline:
        line += f" — {inert(_short(byline, 120))}"
    return line


def render_sources(sources: Sequence[ArticleRef], limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Every article an answer drew on, numbered, in as few messages as fit."""
    header = f"<b>{escape(prompts.TG_SOURCES_HEADER.format(count=len(sources)))}</b>"
    lines = [_article_line(n, source) for n, source in enumerate(sources, 1)]
    return pack_lines([header, *lines], limit)


def pack_lines(lines: Sequence[str], limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Whole lines joined into as few messages as fit, split only between lines."""
    messages: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if fits(candidate, limit):
            current = candidate
        else:
            messages.append(current)
            current = line
    messages.append(current)
    return messages


def render_uploads(uploads: Sequence[Upload]) -> list[str]:
    """The admin's numbered list of uploads (the numbers /remove takes)."""
    if not uploads:
        return [escape(prompts.TG_NO_UPLOADS)]
    lines = [f"<b>{escape(prompts.TG_UPLOADS_HEADER.format(count=len(uploads)))}</b>"]
    lines += [f"{n}. {inert(_short(u.name, 120))} ({_size(u.size)})"
              for n, u in enumerate(uploads, 1)]
    return pack_lines(lines)


def _size(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.0f} KB"


def render_ingest(report: IngestReport, file_name: str, kept: bool,
                  replaced: bool = False) -> str:
    """The admin's summary: what changed, what was skipped and why."""
    lines = [
        escape(prompts.TG_INGEST_DONE.format(
            name=_short(file_name, 120), added=report.added, updated=report.updated,
            unchanged=report.unchanged, skipped=len(report.skipped), passages=report.passages,
        ))
    ]
    for skipped in report.skipped:
        name = skipped.path.replace("\\", "/").rsplit("/", 1)[-1]  # never a server path
        lines.append(escape(prompts.TG_INGEST_SKIPPED.format(name=_short(name, 120),
                                                             reason=_short(skipped.reason))))
    if not kept:
        lines.append(escape(prompts.TG_INGEST_NOT_KEPT))
    elif replaced:
        lines.append(escape(prompts.TG_INGEST_REPLACED))
    return "\n".join(lines)


def refusal(verdict: Verdict, question: str, settings: TelegramSettings,
            usage: str = prompts.TG_ASK_USAGE) -> str | None:
    """Why a question is not answered; None when the user was already told."""
    if verdict.refusal == "empty":
        return usage
    if verdict.refusal == "too_long":
        return prompts.TG_TOO_LONG.format(length=len(question), limit=settings.max_question_chars)
    return prompts.TG_RATE_LIMITED.format(seconds=verdict.wait_s) if verdict.notify else None


def not_answered(count: int) -> str:
    return prompts.TG_NOT_ANSWERED.format(count=count, s="" if count == 1 else "s")


def too_big(size: int, settings: TelegramSettings) -> str:
    return prompts.TG_DOCUMENT_TOO_BIG.format(size=size / 1024 / 1024,
                                              limit=settings.max_document_mb)


def error_line(error: BaseException | None) -> str:
    """The one line a user sees for a failure; details go to the log."""
    if isinstance(error, StoreUnavailable):
        return prompts.TG_UNAVAILABLE
    if isinstance(error, IndexNotBuilt):
        return prompts.TG_NO_INDEX
    if isinstance(error, IngestLocked):
        return prompts.TG_INGEST_BUSY
    if isinstance(error, DossierError) and str(error).strip():
        return str(error).strip().splitlines()[0][:300]
    return prompts.TG_ERROR
