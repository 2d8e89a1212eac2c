"""Readers for Markdown (with front matter) and HTML, to paragraphs plus declared metadata."""

from __future__ import annotations

import html as html_lib
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from index.chrome import find_date
from index.cleaning import Paragraph, collapse_spaces, split_paragraphs
from index.encoding import normalise_text

log = logging.getLogger(__name__)

# Past these, HTML skips trafilatura for a linear tag-stripper: lxml and trafilatura walk
# the tree recursively and their time grows with size, so hostile pages are bounded here.
MAX_HTML_DEPTH = 400
MAX_TRAFILATURA_CHARS = 5_000_000
_MAX_FRONT_MATTER = 64 * 1024


@dataclass
class Extracted:
    """What a format reader found: paragraphs plus the metadata the file itself declares."""

    paragraphs: list[Paragraph] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    published: str | None = None
    url: str | None = None
    source: str | None = None
    page_count: int = 0


# --- Markdown -------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_SETEXT = re.compile(r"^(=+|-+)\s*$")
_MD_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+")
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?!\w)")
_MD_CODE = re.compile(r"`([^`]+)`")


def read_markdown(text: str) -> Extracted:
    """Front matter as metadata; headings, list items and paragraphs, markup removed."""
    meta, body = split_front_matter(text)
    extracted = Extracted(
        paragraphs=markdown_paragraphs(body),
        title=_meta_text(meta, "title"),
        author=_meta_author(meta),
        published=_meta_date(meta),
        url=_meta_text(meta, "url", "link", "canonical_url"),
        source=_meta_text(meta, "source", "publisher", "site"),
    )
    if extracted.title is None:
        extracted.title = _leading_heading(extracted.paragraphs)
    return extracted


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (`---` ... `---`) and the text after it; bad YAML is no front matter."""
    match = _FRONT_MATTER.match(text)
    if not match or len(match.group(1)) > _MAX_FRONT_MATTER:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, text[match.end() :]
    if not isinstance(data, dict):
        return {}, text[match.end() :]
    return {str(key).lower(): value for key, value in data.items()}, text[match.end() :]


def markdown_paragraphs(body: str) -> list[Paragraph]:
    """Paragraphs of a Markdown body: soft-wrapped lines joined, headings flagged."""
    paragraphs: list[Paragraph] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(Paragraph(_md_inline(" ".join(current))))
            current.clear()

    for raw in body.split("\n"):
        line = _MD_QUOTE.sub("", raw).strip()
        heading = _MD_HEADING.match(line)
        if not line or heading or _MD_ITEM.match(raw):
            flush()
        if heading:
            paragraphs.append(Paragraph(_md_inline(heading.group(2)), heading=True))
        elif _MD_SETEXT.match(line) and len(current) == 1:
            paragraphs.append(Paragraph(_md_inline(current[0]), heading=True))
            current.clear()
        elif line:
            current.append(_MD_ITEM.sub("", line) if _MD_ITEM.match(raw) else line)
    flush()
    return [p for p in paragraphs if p.text]


def _md_inline(text: str) -> str:
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_STRONG.sub(r"\2", text)
    text = _MD_EMPHASIS.sub(r"\1", text)
    return collapse_spaces(_MD_CODE.sub(r"\1", text))


def _leading_heading(paragraphs: list[Paragraph]) -> str | None:
    """A Markdown file's first heading, when it opens the file, is its title."""
    if paragraphs and paragraphs[0].heading:
        title = paragraphs.pop(0).text
        return title
    return None


def _meta_text(meta: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str | int | float) and str(value).strip():
            return collapse_spaces(str(value))
    return None


def _meta_author(meta: dict[str, Any]) -> str | None:
    for key in ("author", "authors", "byline"):
        value = meta.get(key)
        if isinstance(value, list):
            names = [collapse_spaces(str(v)) for v in value if isinstance(v, str | int)]
            return ", ".join(name for name in names if name) or None
        if isinstance(value, str) and value.strip():
            return collapse_spaces(value)
    return None


def _meta_date(meta: dict[str, Any]) -> str | None:
    for key in ("published", "date", "published_at", "pubdate", "created"):
        value = meta.get(key)
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            found = find_date(value)
            if found:
                return found
    return None


# --- HTML -----------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
# Elements that never nest (void) or that HTML closes implicitly (p, li, td): not depth.
_VOID = frozenset(
    re.findall(
        r"\w+",
        "area base br col embed hr img input link meta param source track wbr "
        "p li td th tr dt dd option",
    )
)
_BLOCK_TAGS = re.compile(
    r"<\s*/?\s*(?:p|div|br|h[1-6]|li|tr|section|article|header|footer|nav|aside|blockquote|"
    r"ul|ol|table|hr|figure|figcaption|main|dd|dt|pre)\b[^>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]*>")
_TITLE_TAG = re.compile(r"<title[^>]*>([^<]{1,500})</title", re.IGNORECASE)
_HEADING_TAG = re.compile(r"<h([1-6])[^>]*>([^<]{1,300})</h\1", re.IGNORECASE)
_HIDDEN_OPEN = re.compile(r"<(script|style|noscript|template|svg|head)(?=[\s>/])", re.IGNORECASE)


def read_html(markup: str) -> Extracted:
    """Main text and metadata through trafilatura; a plain tag-stripper for hostile pages."""
    if len(markup) > MAX_TRAFILATURA_CHARS or nesting_depth(markup) > MAX_HTML_DEPTH:
        return strip_tags_extraction(markup)
    try:
        extracted = _trafilatura_extraction(markup)
    except RecursionError:
        extracted = None
    except Exception as error:  # any parser failure falls back to stripping
        log.debug("trafilatura failed, stripping tags instead: %s", error)
        extracted = None
    if extracted is None or not extracted.paragraphs:
        return strip_tags_extraction(markup)
    return extracted


def nesting_depth(markup: str, limit: int = MAX_HTML_DEPTH) -> int:
    """Deepest element nesting, counted without a parser; stops once past `limit`."""
    depth = deepest = 0
    for match in _TAG.finditer(markup):
        closing, name, self_closing = match.groups()
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest


def _trafilatura_extraction(markup: str) -> Extracted | None:
    import trafilatura  # heavy: loaded on first HTML file
    from lxml import etree

    xml = trafilatura.extract(
        markup,
        output_format="xml",
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_formatting=False,
        include_links=False,
    )
    if not xml:
        return None
    root = etree.fromstring(xml.encode("utf-8"), parser=etree.XMLParser(huge_tree=False))
    main = root.find("main")
    paragraphs = _xml_paragraphs(main) if main is not None else []
    return Extracted(
        paragraphs=paragraphs,
        title=_attr(root, "title"),
        author=_attr(root, "author"),
        published=find_date(_attr(root, "date") or ""),
        url=_attr(root, "url"),
        source=_attr(root, "sitename") or _attr(root, "hostname"),
    )


def _xml_paragraphs(element: Any) -> list[Paragraph]:
    paragraphs: list[Paragraph] = []
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in {"list", "quote", "div", "table"} and len(child):
            paragraphs.extend(_xml_paragraphs(child))
        elif tag == "row":
            cells = [_element_text(cell) for cell in child]
            text = " | ".join(cell for cell in cells if cell)
            if text:
                paragraphs.append(Paragraph(text))
        elif tag in {"p", "head", "item", "quote", "cell"}:
            text = _element_text(child)
            if text:
                paragraphs.append(Paragraph(text, heading=tag == "head"))
    return paragraphs


def _element_text(element: Any) -> str:
    parts: list[str] = []
    for node in element.iter():
        if node.tag == "lb" or (node is not element and node.tag in {"p", "item"}):
            parts.append(" ")
        if node.text and node.tag != "lb":
            parts.append(node.text)
        if node is not element and node.tail:
            parts.append(node.tail)
    return collapse_spaces(normalise_text("".join(parts)))


def _attr(element: Any, name: str) -> str | None:
    value = element.get(name)
    return collapse_spaces(value) if value and value.strip() else None


def strip_tags_extraction(markup: str) -> Extracted:
    """Linear-time text of any HTML: hidden elements cut, block tags to newlines, tags out."""
    title_match = _TITLE_TAG.search(markup[:200_000])
    headings = {
        collapse_spaces(html_lib.unescape(m.group(2))) for m in _HEADING_TAG.finditer(markup)
    }
    text = _cut_hidden_elements(markup)
    text = _BLOCK_TAGS.sub("\n", text)
    text = normalise_text(html_lib.unescape(_ANY_TAG.sub("", text)))
    paragraphs = [
        Paragraph(paragraph, heading=paragraph in headings) for paragraph in split_paragraphs(text)
    ]
    title = collapse_spaces(html_lib.unescape(title_match.group(1))) if title_match else None
    return Extracted(paragraphs=paragraphs, title=title or None)


def _cut_hidden_elements(markup: str) -> str:
    kept: list[str] = []
    position = 0
    while opening := _HIDDEN_OPEN.search(markup, position):
        kept.append(markup[position : opening.start()])
        name = opening.group(1).lower()
        closing = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(markup, opening.end())
        if closing is None:
            return "".join(kept)
        position = closing.end()
    kept.append(markup[position:])
    return "".join(kept)
