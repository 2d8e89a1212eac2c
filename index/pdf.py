"""PDF to paragraphs with page numbers via pypdf; encrypted, broken and scanned PDFs refused."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from index.cleaning import Paragraph, collapse_spaces, split_paragraphs
from index.encoding import normalise_text
from index.errors import UnreadableArticle
from index.formats import Extracted

log = logging.getLogger(__name__)
# pypdf warns about every repaired cross-reference table; without a handler of its own
# those reach stderr through logging's last resort while a CLI ingest is printing.
logging.getLogger("pypdf").addHandler(logging.NullHandler())

_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_DIGITS = re.compile(r"\d+")
_RUNNING_DEPTH = 2
_FILENAME_TITLE = re.compile(
    r"\.(?:docx?|pdf|odt|rtf|indd|pages)\b|^microsoft word|^untitled", re.IGNORECASE
)


def read_pdf(data: bytes) -> Extracted:
    """Text per page through pypdf; encrypted, broken and image-only PDFs are refused."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        _unlock(reader)
        pages = list(reader.pages)
    except UnreadableArticle:
        raise
    except Exception as error:
        # pypdf raises a zoo of types on damaged files (KeyError, struct.error, ...).
        raise UnreadableArticle(f"broken PDF ({_short(error)})") from error
    if not pages:
        raise UnreadableArticle("PDF has no pages")
    texts = [_page_text(page) for page in pages]
    if not any(text.strip() for text in texts):
        raise UnreadableArticle("PDF has no text layer (scanned images?)")
    page_lines = drop_running_lines([normalise_text(text).split("\n") for text in texts])
    paragraphs = [
        Paragraph(paragraph, page=number)
        for number, lines in enumerate(page_lines, 1)
        for paragraph in split_paragraphs("\n".join(lines))
    ]
    extracted = Extracted(paragraphs=paragraphs, page_count=len(pages))
    _pdf_metadata(reader, extracted)
    return extracted


def drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Remove page numbers and the running header and footer repeated page after page.

    Only a page's first and last few lines are candidates; digits are masked so that
    "Page 3 of 9" and "Page 4 of 9" count as the same line.
    """
    edges = [_edge_keys(lines) for lines in pages]
    counts: dict[str, int] = {}
    for keys in edges:
        for key in set(keys.values()):
            counts[key] = counts.get(key, 0) + 1
    running = {key for key, count in counts.items() if count >= max(3, len(pages) // 2)}
    return [
        [
            line
            for index, line in enumerate(lines)
            if not (index in keys and (keys[index] in running or _PAGE_NUMBER.match(line.strip())))
        ]
        for lines, keys in zip(pages, edges, strict=True)
    ]


def _edge_keys(lines: list[str]) -> dict[int, str]:
    filled = [index for index, line in enumerate(lines) if line.strip()]
    edge = filled[:_RUNNING_DEPTH] + filled[-_RUNNING_DEPTH:]
    return {index: _DIGITS.sub("#", collapse_spaces(lines[index]).lower()) for index in edge}


def _unlock(reader: Any) -> None:
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("")
    except Exception as error:  # pypdf raises several types for ciphers
        raise UnreadableArticle(f"encrypted PDF ({_short(error)})") from error
    if not unlocked:
        raise UnreadableArticle("encrypted PDF: it needs a password")


def _page_text(page: Any) -> str:
    try:
        return str(page.extract_text() or "")
    except Exception as error:  # one bad page must not lose the others
        log.debug("PDF page unreadable: %s", error)
        return ""


def _pdf_metadata(reader: Any, extracted: Extracted) -> None:
    try:
        info = reader.metadata
    except Exception:  # a broken info dictionary is just no metadata
        return
    if info is None:
        return
    title = collapse_spaces(str(info.title or ""))
    if title and not _FILENAME_TITLE.search(title):
        extracted.title = title
    author = collapse_spaces(str(info.author or ""))
    extracted.author = author or None
    try:
        created = info.creation_date
    except Exception:  # malformed dates are common in PDFs
        created = None
    if created is not None:
        extracted.published = created.date().isoformat()


def _short(error: BaseException) -> str:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return message[:120]
