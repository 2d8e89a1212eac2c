"""The paragraphs of a Markdown body, read by a CommonMark parser (markdown-it-py)."""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from index.cleaning import Paragraph, collapse_spaces
from index.html_text import html_paragraphs

# Table cells are joined as the HTML reader joins them, so one table reads alike in both.
CELL_SEPARATOR = " | "

# CommonMark plus tables; no typographer, so the text keeps the author's own characters.
_PARSER = MarkdownIt("commonmark", {"typographer": False}).enable("table")

# Inline tokens whose text is not part of the article: images (alt text describes a picture
# and often hides an address) and raw inline HTML tags (their text arrives as plain tokens).
_SKIPPED_INLINE = frozenset({"image", "html_inline"})


def markdown_paragraphs(body: str) -> list[Paragraph]:
    """Headings, paragraphs, list items, quotes, table rows and code blocks, markup removed."""
    paragraphs: list[Paragraph] = []
    tokens = _PARSER.parse(body)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            paragraphs.append(Paragraph(_inline_text(tokens[index + 1]), heading=True))
            index += 2
        elif token.type == "tr_open":
            index = _table_row(tokens, index, paragraphs)
        elif token.type == "inline":
            paragraphs.append(Paragraph(_inline_text(token)))
        elif token.type in {"fence", "code_block"}:
            # Code is content (an article may show a command); its fences and language are not.
            paragraphs.append(Paragraph(" ".join(token.content.split())))
        elif token.type == "html_block":
            paragraphs.extend(html_paragraphs(token.content))
        index += 1
    return [paragraph for paragraph in paragraphs if paragraph.text]


def _table_row(tokens: Sequence[Token], index: int, paragraphs: list[Paragraph]) -> int:
    """One paragraph per table row; returns the index of the row's closing token."""
    cells: list[str] = []
    while tokens[index].type != "tr_close":
        if tokens[index].type == "inline":
            cells.append(_inline_text(tokens[index]))
        index += 1
    paragraphs.append(Paragraph(CELL_SEPARATOR.join(cell for cell in cells if cell)))
    return index


def _inline_text(token: Token) -> str:
    """The words of an inline run: emphasis, links and escapes resolved, images dropped."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in {"text", "code_inline"}:
            parts.append(child.content)
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
        elif child.type not in _SKIPPED_INLINE:
            parts.append(child.content)
    return collapse_spaces("".join(parts))
