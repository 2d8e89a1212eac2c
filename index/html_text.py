"""Plain text of any HTML through lxml's streaming parser: no tree, so no depth limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from index.cleaning import Paragraph, collapse_spaces, split_paragraphs
from index.encoding import normalise_text

# Elements whose content a reader never sees.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "head"})
# Elements that start a new line of text.
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = _HEADINGS | {
    *("p", "div", "br", "li", "tr", "section", "article", "header", "footer", "nav", "aside"),
    *("blockquote", "ul", "ol", "table", "hr", "figure", "figcaption", "main", "dd", "dt", "pre"),
}


@dataclass
class HtmlText:
    """The visible paragraphs of a page and its <title>."""

    paragraphs: list[Paragraph] = field(default_factory=list)
    title: str | None = None


def read_plain_html(markup: str) -> HtmlText:
    """Visible text in paragraphs (block elements break lines), headings flagged, and title."""
    collector = _TextCollector()
    # A target parser streams events without building a tree, so depth costs nothing;
    # libxml2 tokenises as HTML5 does (attributes, comments, raw-text elements).
    parser = etree.HTMLParser(target=collector, recover=True, no_network=True, huge_tree=True)
    parser.feed(markup)
    parser.close()
    text = normalise_text("".join(collector.pieces))
    headings = {collapse_spaces(normalise_text(h)) for h in collector.headings}
    paragraphs = [Paragraph(p, heading=p in headings) for p in split_paragraphs(text)]
    title = collapse_spaces(normalise_text(" ".join(collector.title)))
    return HtmlText(paragraphs=paragraphs, title=title or None)


def html_paragraphs(markup: str) -> list[Paragraph]:
    """The visible paragraphs of an HTML fragment (as embedded in Markdown)."""
    return read_plain_html(markup).paragraphs


class _TextCollector:
    """Parser target collecting visible text; comments and attributes never reach it."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.headings: list[str] = []
        self.title: list[str] = []
        self._hidden: list[str] = []
        self._in_title = False
        self._heading: list[str] | None = None

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        if tag == "body":
            # A <head> left open ends where the body begins, as browsers read it.
            self._hidden.clear()
        if tag in _HIDDEN:
            self._hidden.append(tag)
        elif tag == "title":
            self._in_title = True
        if tag in _BLOCKS:
            self.pieces.append("\n")
        if tag in _HEADINGS and not self._hidden:
            self._heading = []

    def end(self, tag: str) -> None:
        if tag in self._hidden:
            while self._hidden.pop() != tag:
                pass
        elif tag == "title":
            self._in_title = False
        if tag in _BLOCKS:
            self.pieces.append("\n")
        if tag in _HEADINGS and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def data(self, data: str) -> None:
        if self._in_title and len(self.title) < 100:
            self.title.append(data)
        if self._hidden:
            return
        self.pieces.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def comment(self, text: str) -> None:
        """Comments are not text."""

    def close(self) -> None:
        """Nothing to return: the collected text is read from the attributes."""
