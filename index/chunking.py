"""Cut an article into passages on paragraph and sentence boundaries, with exact offsets."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blingfire

from index.models import Article, Chunk, Span

TokenCounter = Callable[[Sequence[str]], list[int]]

# Word pieces left in the model window for the title and heading given as context.
CONTEXT_TOKENS = 40

_PARAGRAPH = re.compile(r"[^\n]+")
_WORD = re.compile(r"\S+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Absolute [start, end) spans of the sentences in text[start:end], one paragraph or more.

    blingfire splits fast and knows abbreviations; its offsets are re-anchored with
    `str.find` so a span is always exactly what stands in the text.
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    for match in _PARAGRAPH.finditer(text, start, end):
        line_start = match.start()
        line = match.group()
        pieces = blingfire.text_to_sentences(line).split("\n") if line.strip() else []
        cursor = 0
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            found = line.find(piece, cursor)
            if found < 0:
                # blingfire normalised something (rare): fall back to the whole rest of line.
                rest = line[cursor:].strip()
                if rest:
                    found = line.find(rest, cursor)
                    spans.append((line_start + found, line_start + found + len(rest)))
                cursor = len(line)
                break
            spans.append((line_start + found, line_start + found + len(piece)))
            cursor = found + len(piece)
        trailing = line[cursor:].strip()
        if trailing and pieces:
            found = line.find(trailing, cursor)
            spans.append((line_start + found, line_start + found + len(trailing)))
    return spans


@dataclass
class _Unit:
    """A sentence (or a word-cut piece of an over-long one) with its token count."""

    start: int
    end: int
    tokens: int
    paragraph: int
    heading: bool


def _heading_starts(article: Article) -> set[int]:
    return {start for start, _ in article.headings}


def _split_long(text: str, unit: _Unit, limit: int, count: TokenCounter) -> list[_Unit]:
    """Cut a sentence longer than the window at word boundaries so nothing is truncated."""
    words = [(m.start() + unit.start, m.end() + unit.start)
             for m in _WORD.finditer(text, unit.start, unit.end)]
    word_tokens = count([text[a:b] for a, b in words])
    pieces: list[_Unit] = []
    piece_start, piece_tokens, last_end = words[0][0], 0, words[0][0]
    for (a, b), tokens in zip(words, word_tokens, strict=True):
        tokens = min(tokens, limit)  # one absurd "word" still has to go somewhere
        if piece_tokens and piece_tokens + tokens > limit:
            pieces.append(_Unit(piece_start, last_end, piece_tokens, unit.paragraph, False))
            piece_start, piece_tokens = a, 0
        piece_tokens += tokens
        last_end = b
    pieces.append(_Unit(piece_start, last_end, piece_tokens, unit.paragraph, False))
    return pieces


def chunk_article(
    article: Article,
    count_tokens: TokenCounter,
    *,
    max_tokens: int = 200,
    window: int = 254,
) -> list[Chunk]:
    """Pack whole sentences into passages of at most `max_tokens` word pieces.

    A passage never crosses a section heading (the heading opens the next passage), prefers
    to end at a paragraph end, and never exceeds `window` (the model's limit less its
    special tokens), so the embedding model never silently truncates one.
    """
    text = article.text
    limit = min(max_tokens, window)
    heading_starts = _heading_starts(article)
    spans = sentence_spans(text)
    if not spans:
        return []
    paragraph_of: list[int] = []
    paragraph = 0
    for i, (start, _) in enumerate(spans):
        if i and "\n" in text[spans[i - 1][1]:start]:
            paragraph += 1
        paragraph_of.append(paragraph)
    counts = count_tokens([text[a:b] for a, b in spans])
    units: list[_Unit] = []
    for (start, end), tokens, para in zip(spans, counts, paragraph_of, strict=True):
        unit = _Unit(start, end, tokens, para, start in heading_starts)
        units.extend(_split_long(text, unit, limit, count_tokens) if tokens > limit else [unit])

    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    current_tokens = 0
    for unit in units:
        overflow = current_tokens + unit.tokens > limit
        if current and (unit.heading or overflow):
            groups.append(current)
            current, current_tokens = [], 0
        current.append(unit)
        current_tokens += unit.tokens
    if current:
        groups.append(current)
    groups = _rebalance_paragraph_ends(groups, limit)

    chunks: list[Chunk] = []
    for group in groups:
        start, end = group[0].start, group[-1].end
        heading = article.heading_before(start)
        chunks.append(
            Chunk(
                article_id=article.id,
                index=len(chunks),
                start=start,
                end=end,
                text=text[start:end],
                heading=heading,
                sentences=tuple((u.start, u.end) for u in group),
            )
        )
    return chunks


def _rebalance_paragraph_ends(groups: list[list[_Unit]], limit: int) -> list[list[_Unit]]:
    """Move a dangling paragraph start to the next passage when that one has room.

    Greedy packing can end a passage with the first sentence of a paragraph whose rest
    opens the next passage; moving it keeps paragraphs whole where the budget allows.
    """
    for i in range(len(groups) - 1):
        group, following = groups[i], groups[i + 1]
        if following[0].heading:
            continue
        tail_paragraph = group[-1].paragraph
        if following[0].paragraph != tail_paragraph:
            continue
        tail = [u for u in group if u.paragraph == tail_paragraph]
        if len(tail) == len(group):
            continue  # the whole passage is one paragraph: nothing better to do
        moved = sum(u.tokens for u in tail)
        if moved + sum(u.tokens for u in following) <= limit:
            groups[i] = group[: len(group) - len(tail)]
            groups[i + 1] = tail + following
    return [g for g in groups if g]


def embedding_texts(
    passages: Sequence[tuple[Article, Chunk]],
    count_tokens: TokenCounter,
    *,
    max_context_tokens: int = CONTEXT_TOKENS,
) -> list[str]:
    """What the model sees for each passage: title and section as context, then the passage.

    The passage text itself (and its offsets) stays untouched; only the vector gains
    context. The context is cut to `max_context_tokens` word pieces (the room the chunker
    leaves in the window), so it can never push the passage out of the model window.
    """
    contexts = [_context(article, chunk) for article, chunk in passages]
    cut = leading_words(contexts, count_tokens, max_context_tokens)
    return [
        f"{cut[context]}\n{chunk.text}" if cut[context] else chunk.text
        for context, (_, chunk) in zip(contexts, passages, strict=True)
    ]


def sentence_spans_in(chunk: Chunk, embedded: str) -> list[Span]:
    """The chunk's sentence spans as offsets into `embedded`, the text the model reads for
    it (context, if any, then the passage text, which ends it)."""
    shift = len(embedded) - len(chunk.text) - chunk.start
    return [(start + shift, end + shift) for start, end in chunk.sentences]


def _context(article: Article, chunk: Chunk) -> str:
    parts = [article.title.strip()]
    if chunk.heading and not chunk.text.startswith(chunk.heading):
        parts.append(chunk.heading.strip())
    return " ".join(" — ".join(p for p in parts if p).split())


def leading_words(
    texts: Sequence[str], count_tokens: TokenCounter, limit: int
) -> dict[str, str]:
    """Each text cut to its most leading words that together are at most `limit` word pieces.

    Counted in batches (a tokenizer call has a fixed cost): all the texts, then the words
    of those that are too long.
    """
    distinct = sorted({text for text in texts if text})
    cut = {"": ""}
    too_long: list[str] = []
    for text, pieces in zip(distinct, count_tokens(distinct), strict=True):
        if pieces <= limit:
            cut[text] = text
        else:
            too_long.append(text)
    if not too_long:
        return cut
    words = [text.split() for text in too_long]
    # Contexts share words (one title over many headings): each distinct word counted once.
    distinct_words = sorted({word for split in words for word in split})
    word_pieces = dict(zip(distinct_words, count_tokens(distinct_words), strict=True))
    for text, split in zip(too_long, words, strict=True):
        kept = used = 0
        for pieces in (word_pieces[word] for word in split):
            if used + pieces > limit:
                break
            used += pieces
            kept += 1
        cut[text] = " ".join(split[:kept])
    # WordPiece counts add up word by word; a tokenizer that merges across spaces may not,
    # so the cut texts are counted once more (and trimmed, rarely, a word at a time).
    for text, pieces in zip(too_long, count_tokens([cut[t] for t in too_long]), strict=True):
        while pieces > limit:
            cut[text] = cut[text].rsplit(" ", 1)[0] if " " in cut[text] else ""
            pieces = count_tokens([cut[text]])[0] if cut[text] else 0
    return cut
