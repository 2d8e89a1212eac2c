"""Strip page chrome from an article's text and find its title, author and date."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from index import chrome
from index.layout import (
    KEPT,
    Block,
    Kind,
    heading_like,
    resolve_context,
    top_region,
    trim_edge,
)
from index.models import Span

_SPACES = re.compile(r"[ \t\f\v]{2,}|[\t\f\v]")
# Repetition counts only when a line is shared by more than this share of a corpus'
# distinct articles (and by at least `min_articles`): near-duplicate articles (updates of
# one story) share real paragraphs, a site's boilerplate is shared by hundreds.
_CORPUS_SHARE = 1 / 200
_MAX_CHROME_LINE = 400


@dataclass(frozen=True)
class Paragraph:
    """One paragraph handed to the cleaner; `heading` when the source marked it (<h2>, ##)."""

    text: str
    page: int = 0
    heading: bool = False


@dataclass(frozen=True)
class CleanText:
    """The body of an article, paragraphs separated by blank lines, and what was found around it."""

    text: str
    headings: tuple[Span, ...] = ()
    title: str | None = None
    author: str | None = None
    published: str | None = None
    # Start offset in `text` of each page, when paragraphs came with page numbers (PDF).
    pages: tuple[int, ...] = ()


@dataclass
class _Meta:
    author: str | None = None
    published: str | None = None


def clean_article_text(
    raw: str,
    *,
    title_hint: str | None = None,
    chrome_lines: frozenset[str] = frozenset(),
    known_headings: Iterable[str] = (),
) -> CleanText:
    """Clean one article given as text: one paragraph per line (or per wrapped block)."""
    headings = {normalise_line(heading) for heading in known_headings}
    paragraphs = [
        Paragraph(text, heading=normalise_line(text) in headings) for text in split_paragraphs(raw)
    ]
    return clean_paragraphs(paragraphs, title_hint=title_hint, chrome_lines=chrome_lines)


def clean_paragraphs(
    paragraphs: Sequence[Paragraph],
    *,
    title_hint: str | None = None,
    chrome_lines: frozenset[str] = frozenset(),
    page_count: int = 0,
) -> CleanText:
    """Classify paragraphs as body or chrome and join the body with blank lines.

    With `page_count`, paragraphs carry 1-based page numbers and the result the start
    offset of every page.
    """
    blocks = [
        Block(text, p.page, p.heading, chrome.words_of(text))
        for p in paragraphs
        if (text := collapse_spaces(p.text))
    ]
    for block in blocks:
        block.kind = _classify(block, chrome_lines)
        block.media = block.kind is Kind.BAD and chrome.is_media(block.text)
        block.interface = chrome.is_interface_label(block.words)
    meta = _take_byline(blocks)
    title = _take_title(blocks, title_hint)
    resolve_context(blocks)
    trim_edge(blocks)
    trim_edge(blocks[::-1])
    return _assemble(blocks, title, meta, page_count)


def corpus_chrome_lines(raw_texts: Iterable[str], *, min_articles: int = 3) -> frozenset[str]:
    """Lines (normalised) that many distinct articles of one corpus share: boilerplate."""
    seen_texts: set[int] = set()
    counts: Counter[int] = Counter()
    # Counting by hash keeps memory flat on a large corpus; a line's text is kept only
    # once it is shared often enough to matter.
    candidates: dict[int, str] = {}
    for raw in raw_texts:
        text_key = hash(raw)
        if text_key in seen_texts:
            continue
        seen_texts.add(text_key)
        for line in {normalise_line(line) for line in raw.split("\n")}:
            if not line or len(line) > _MAX_CHROME_LINE:
                continue
            key = hash(line)
            counts[key] += 1
            if counts[key] == min_articles:
                candidates[key] = line
    threshold = max(min_articles, math.ceil(len(seen_texts) * _CORPUS_SHARE))
    return frozenset(line for key, line in candidates.items() if counts[key] >= threshold)


def normalise_line(line: str) -> str:
    """The form a line is compared in: compatibility-normalised, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", line).casefold().split())


def collapse_spaces(text: str) -> str:
    """Runs of spaces and tabs become one space; the only change made inside a paragraph."""
    return _SPACES.sub(" ", text).strip()


def split_paragraphs(raw: str) -> list[str]:
    """Paragraphs of plain text: each line, or blank-line blocks when lines are hard-wrapped."""
    lines = [collapse_spaces(line) for line in re.split(r"[\n\f\v]", raw)]
    width = _wrap_width(lines)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if not line:
            _flush(current, paragraphs)
            continue
        if current and (width is None or chrome.is_bullet(line)):
            _flush(current, paragraphs)
        current.append(line)
        if width is not None and len(line) < 0.7 * width:
            _flush(current, paragraphs)
    _flush(current, paragraphs)
    return paragraphs


def _flush(current: list[str], paragraphs: list[str]) -> None:
    if current:
        paragraphs.append(" ".join(current))
        current.clear()


def _wrap_width(lines: Sequence[str]) -> int | None:
    """The column text was hard-wrapped at, or None when every line is a paragraph of its own.

    Wrapped text shows many lines of about the same length that stop mid-sentence; a text
    with one paragraph per line ends nearly every long line with punctuation.
    """
    lengths = sorted(len(line) for line in lines if line)
    if len(lengths) < 4:
        return None
    width = lengths[int(0.9 * (len(lengths) - 1))]
    if not 40 <= width <= 130:
        return None
    full = [line for line in lines if len(line) >= 0.7 * width]
    open_ended = sum(1 for line in full if not chrome.ends_sentence(line))
    return width if len(full) >= 3 and open_ended * 2 >= len(full) else None


def _classify(block: Block, chrome_lines: frozenset[str]) -> Kind:
    text, words = block.text, block.words
    if not words:
        return Kind.BAD
    if (
        chrome.is_boilerplate(text, words)
        or chrome.is_caption(text)
        or chrome.is_dateline(text, words)
        or chrome.is_tag(text, words)
        or chrome.is_tag_soup(text, words)
    ):
        return Kind.BAD
    short_bullet = chrome.is_bullet(text) and len(words) <= 6 and not chrome.ends_sentence(text)
    if short_bullet and chrome.boilerplate_score(text, words) > 0:
        return Kind.BAD
    if normalise_line(text) in chrome_lines and not _plain_prose(text, words):
        return Kind.LABEL
    if chrome.is_interface_label(words):
        return Kind.LABEL
    if block.hinted_heading and len(words) <= 25:
        return Kind.HEADING
    # Scraped news often drops a paragraph's final period; prose still reads as prose.
    prose = chrome.has_sentence_end(text) or _mostly_lowercase(words)
    if len(text) >= 70 and len(words) >= 10 and prose:
        return Kind.GOOD
    if len(text) >= 200:
        return Kind.GOOD
    if chrome.ends_sentence(text) and len(words) >= 2 and any(c.islower() for c in text):
        return Kind.SENTENCE
    return Kind.SHORT


def _mostly_lowercase(words: list[str]) -> bool:
    return sum(1 for word in words if word[:1].islower()) * 2 >= len(words)


def _plain_prose(text: str, words: list[str]) -> bool:
    """A sentence with no chrome vocabulary at all: shared by near-duplicate stories, not chrome."""
    return len(words) >= 8 and chrome.ends_sentence(text) and chrome.strong_hits(text) == 0


def _take_byline(blocks: list[Block]) -> _Meta:
    """Read author and date from byline lines at the top, and mark those lines as chrome."""
    meta = _Meta()
    for index in top_region(blocks):
        block = blocks[index]
        author = chrome.parse_byline(block.text)
        dated = chrome.is_date_line(block.text, block.words)
        if author is None and not dated:
            continue
        meta.author = meta.author or author
        meta.published = meta.published or chrome.find_date(block.text)
        block.kind = Kind.BAD
    return meta


def _take_title(blocks: list[Block], title_hint: str | None) -> str | None:
    """The title line at the top: the hint when it is there, else the first heading-like line."""
    top = top_region(blocks)
    if title_hint:
        wanted = {normalise_line(title_hint), normalise_line(strip_site_suffix(title_hint))}
        for index in top:
            if normalise_line(blocks[index].text) in wanted:
                blocks[index].kind = Kind.TITLE
        return title_hint
    for index in top:
        block = blocks[index]
        if block.kind in {Kind.SHORT, Kind.HEADING, Kind.SENTENCE} and heading_like(block, 25):
            block.kind = Kind.TITLE
            return block.text
    return None


def strip_site_suffix(title: str) -> str:
    """ "Big story | CNN" → "Big story": the site name after the last bar."""
    head, bar, tail = title.rpartition(" | ")
    return head if bar and head and len(tail.split()) <= 5 else title


def _assemble(
    blocks: Sequence[Block], title: str | None, meta: _Meta, page_count: int
) -> CleanText:
    parts: list[str] = []
    headings: list[Span] = []
    page_starts: dict[int, int] = {}
    offset = 0
    for block in blocks:
        if block.kind not in KEPT:
            continue
        if parts:
            offset += 2
        page_starts.setdefault(block.page, offset)
        if block.kind is Kind.HEADING:
            headings.append((offset, offset + len(block.text)))
        parts.append(block.text)
        offset += len(block.text)
    text = "\n\n".join(parts)
    pages = _page_offsets(page_count, page_starts, len(text))
    return CleanText(text, tuple(headings), title, meta.author, meta.published, pages)


def _page_offsets(page_count: int, starts: dict[int, int], end: int) -> tuple[int, ...]:
    """Start of every page; a page left empty starts where the next one does."""
    offsets: list[int] = []
    following = end
    for page in range(page_count, 0, -1):
        following = starts.get(page, following)
        offsets.append(following)
    return tuple(reversed(offsets))

