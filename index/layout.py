"""Which paragraphs around chrome are body: headings, list runs, neighbours and page edges."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from index import chrome

_HEADING_START = re.compile(r"^[\"“‘'(\[]?[A-Z0-9À-Þ]")


class Kind(Enum):
    """What a paragraph turned out to be."""

    GOOD = "good"  # body prose
    SENTENCE = "sentence"  # a short sentence: "He was 65."
    SHORT = "short"  # short, no sentence end: a heading, a list item, or a label
    LABEL = "label"  # interface words or repeated across the corpus: chrome unless a heading
    HEADING = "heading"
    LIST = "list"  # a short line kept because body surrounds it
    TITLE = "title"
    BAD = "bad"


KEPT = frozenset({Kind.GOOD, Kind.SENTENCE, Kind.HEADING, Kind.LIST})
BODYLIKE = frozenset({Kind.GOOD, Kind.SENTENCE})


@dataclass(eq=False)
class Block:
    """A paragraph being classified; compared by identity, as two may read alike."""

    text: str
    page: int
    hinted_heading: bool
    words: list[str] = field(default_factory=list)
    kind: Kind = Kind.SHORT
    # Inline media (captions, video players) is chrome inside the body: neighbours look
    # past it, so a caption does not drag the list item next to it down with it.
    media: bool = False
    # Made of interface words ("Comments"), as opposed to merely repeated across a corpus.
    interface: bool = False


def top_region(blocks: Sequence[Block]) -> range:
    """Indices before the first body paragraph (or the first few, if none is found)."""
    for index, block in enumerate(blocks):
        if block.kind is Kind.GOOD:
            return range(index)
    return range(min(len(blocks), 6))


def heading_like(block: Block, max_words: int = 15) -> bool:
    """Short, capitalised, and not ending like a sentence (a question may be a heading)."""
    text = block.text
    return (
        0 < len(block.words) <= max_words
        and bool(_HEADING_START.match(text))
        and not text.endswith((",", ";"))
        and not (chrome.ends_sentence(text) and not text.endswith("?"))
        and len(text) <= 160
    )


def resolve_context(blocks: list[Block]) -> None:
    """Decide short paragraphs by their neighbours, as jusText does: body surrounds body."""
    body_start = len(top_region(blocks))
    for index, block in enumerate(blocks):
        if block.kind not in {Kind.SHORT, Kind.LABEL, Kind.HEADING}:
            continue
        if _is_heading(blocks, index, in_body=index > body_start):
            block.kind = Kind.HEADING
        elif block.kind is Kind.HEADING:
            block.kind = Kind.SHORT
    for index, block in enumerate(blocks):
        if block.kind is Kind.SENTENCE and _neighbours_bad(blocks, index):
            block.kind = Kind.BAD
    for start, end in _runs(blocks, Kind.SHORT):
        kind = _short_run_kind(blocks, start, end)
        for block in blocks[start:end]:
            block.kind = kind
    for block in blocks:
        if block.kind is Kind.LABEL:
            block.kind = Kind.BAD


def _runs(blocks: Sequence[Block], kind: Kind) -> list[tuple[int, int]]:
    """[start, end) of each maximal run of blocks of one kind."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, block in enumerate([*blocks, None]):
        if block is not None and block.kind is kind:
            start = index if start is None else start
        elif start is not None:
            runs.append((start, index))
            start = None
    return runs


def _short_run_kind(blocks: Sequence[Block], start: int, end: int) -> Kind:
    """Short lines between body are list items; next to chrome they are chrome.

    A longer run that follows body is kept when it looks like a list (three lines or more,
    no chrome vocabulary), whatever comes after it: a list of places, nominees or figures
    is content even when a footer follows, while a footer's own link list carries the
    vocabulary of one ("Contact", "Privacy Policy") or sits under a chrome label.
    """
    before = _nearest(blocks, range(start - 1, -1, -1), skip_short=False)
    after = _nearest(blocks, range(end, len(blocks)), skip_short=False)
    if before in KEPT and after in KEPT:
        return Kind.LIST
    if before in KEPT and end - start >= 3:
        plain = all(chrome.strong_hits(b.text) == 0 and not b.interface for b in blocks[start:end])
        return Kind.LIST if plain else Kind.BAD
    return Kind.BAD


def _is_heading(blocks: Sequence[Block], index: int, *, in_body: bool) -> bool:
    """A short line that opens body text below it, and does not sit in a chrome cluster."""
    block = blocks[index]
    previous = blocks[index - 1] if index else None
    following = _next_content(blocks, index)
    if following is None or following.kind not in BODYLIKE | {Kind.SHORT}:
        return False
    if block.hinted_heading:
        return True
    if not heading_like(block) or not _leads_to_body(blocks, index):
        return False
    if block.kind is Kind.LABEL and not block.interface:
        # A line repeated across the corpus is a heading only inside the body ("Arkansas"
        # in a state-by-state list); at the top it is the site's promo or section label.
        return in_body and previous is not None and previous.kind in BODYLIKE | {Kind.HEADING}
    if block.interface:
        return previous is not None and previous.kind in BODYLIKE and following.kind is Kind.GOOD
    # Under a chrome section label ("About the Creator") comes chrome, not a section.
    return not (
        in_body
        and previous is not None
        and previous.kind is Kind.BAD
        and not previous.media
        and len(previous.words) <= 6
        and heading_like(previous)
    )


def _next_content(blocks: Sequence[Block], index: int) -> Block | None:
    position = _next_content_index(blocks, index)
    return None if position is None else blocks[position]


def _next_content_index(blocks: Sequence[Block], index: int) -> int | None:
    for position in range(index + 1, len(blocks)):
        if not blocks[position].media:
            return position
    return None


def _leads_to_body(blocks: Sequence[Block], index: int) -> bool:
    """Followed by body, maybe after one short lead line ("$750 billion", then the story)."""
    position = _next_content_index(blocks, index)
    if position is None:
        return False
    if blocks[position].kind in BODYLIKE:
        return True
    after = _next_content(blocks, position)
    return blocks[position].kind is Kind.SHORT and after is not None and after.kind in BODYLIKE


def _neighbours_bad(blocks: Sequence[Block], index: int) -> bool:
    """Whether chrome (or the text's edge) lies on both sides, short lines and media skipped."""
    before = _nearest(blocks, range(index - 1, -1, -1), skip_short=True)
    after = _nearest(blocks, range(index + 1, len(blocks)), skip_short=True)
    if before is None and after is None:
        return False
    chrome_kinds = {Kind.BAD, Kind.LABEL, Kind.TITLE}
    return all(kind is None or kind in chrome_kinds for kind in (before, after))


def _nearest(blocks: Sequence[Block], indices: range, *, skip_short: bool) -> Kind | None:
    for index in indices:
        block = blocks[index]
        if block.media or (skip_short and block.kind is Kind.SHORT):
            continue
        return block.kind
    return None


def trim_edge(blocks: Sequence[Block]) -> None:
    """Drop a chrome cluster at the end of `blocks` (pass a reversed list for the top).

    Chrome gathers at the top and bottom of a page; a bio or a "be the first to comment"
    sentence there reads like prose but sits among chrome. The cluster is the longest
    tail that holds no two body paragraphs in a row and far more chrome than kept text.
    """
    total_kept = sum(len(block.text) for block in blocks if block.kind in KEPT) or 1
    bad = kept = kept_chars = 0
    cut: int | None = None
    for index in range(len(blocks) - 1, 0, -1):
        block = blocks[index]
        if block.kind is Kind.GOOD and blocks[index - 1].kind is Kind.GOOD:
            break
        if block.kind in KEPT:
            kept += 1
            kept_chars += len(block.text)
        elif block.kind is Kind.BAD:
            bad += 1
            if bad >= 4 and bad >= 3 * kept + 1 and kept_chars <= 0.3 * total_kept:
                cut = index
    if cut is not None:
        for block in blocks[cut:]:
            if block.kind in KEPT:
                block.kind = Kind.BAD
