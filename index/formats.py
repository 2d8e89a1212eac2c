"""Readers for Markdown (with front matter) and HTML, to paragraphs plus declared metadata."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from index.chrome import find_date
from index.cleaning import Paragraph, collapse_spaces, split_paragraphs
from index.encoding import normalise_text
from index.html_text import read_plain_html
from index.markdown_text import markdown_paragraphs

log = logging.getLogger(__name__)

# Past these, HTML skips trafilatura for a linear tag-stripper: lxml and trafilatura walk
# the tree recursively and their time grows with size, so hostile pages are bounded here.
MAX_HTML_DEPTH = 400
MAX_TRAFILATURA_CHARS = 5_000_000
_MAX_FRONT_MATTER = 64 * 1024
# Past this, a Markdown body is read as plain paragraphs: the parser reads prose at about
# 1 µs a character, but hostile runs of brackets at up to 45 (BENCHMARKS.md, "Readers").
# A long news article is 5,000 to 50,000 characters.
MAX_PARSED_MARKDOWN_CHARS = 200_000


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


def read_markdown(text: str) -> Extracted:
    """Front matter as metadata; headings, list items and paragraphs, markup removed."""
    meta, body = split_front_matter(text)
    if len(body) > MAX_PARSED_MARKDOWN_CHARS:
        paragraphs = [Paragraph(paragraph) for paragraph in split_paragraphs(body)]
    else:
        paragraphs = markdown_paragraphs(body)
    extracted = Extracted(
        paragraphs=paragraphs,
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
    """Linear-time text of any HTML, for pages too large or too deep for trafilatura."""
    plain = read_plain_html(markup)
    return Extracted(paragraphs=plain.paragraphs, title=plain.title)
