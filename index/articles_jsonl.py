"""Articles JSONL (`{"id","title","url","authors","published","text"}` per line, maybe gzipped)."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

from index.chrome import find_date
from index.cleaning import (
    clean_article_text,
    collapse_spaces,
    corpus_chrome_lines,
    strip_site_suffix,
)
from index.encoding import garbled_reason, normalise_text
from index.errors import UnreadableArticle
from index.models import Article, Skipped, Unchanged
from index.raw_hash import raw_hash

# A gzipped JSONL may hold this many times `max_bytes` once inflated: real corpora
# compress 3-5x, a gzip bomb far more.
INFLATE_FACTOR = 20


def iter_jsonl_articles(
    path: Path, shown: str, *, max_bytes: int, known: Mapping[str, str] | None = None
) -> Iterator[Article | Skipped | Unchanged]:
    """One Article per good line, one Skipped per bad line (its path says `file:line`), one
    Unchanged per line whose raw hash is in `known` (raw hash -> article id).

    The whole file is read once first: lines repeated across many of its articles are a
    site's boilerplate, and the cleaner is told about them (so they are part of each line's
    raw hash: a line cleans differently when they change).
    """
    chrome_lines = corpus_chrome_lines(_first_pass(path, max_bytes))
    context = hashlib.sha256("\n".join(sorted(chrome_lines)).encode()).hexdigest()
    used_ids: set[str] = set()
    for number, raw in _numbered_lines(path, max_bytes):
        if len(raw) > max_bytes:
            yield Skipped(f"{shown}:{number}", f"article too large ({len(raw):,} bytes; "
                                                f"the limit is {max_bytes:,})")
            continue
        line_hash = raw_hash(f"{shown}:{number}", raw, context)
        if known and line_hash in known:
            used_ids.add(known[line_hash])
            yield Unchanged(known[line_hash], shown)
            continue
        try:
            record = parse_record(raw, number)
            article = _article(record, number, shown, chrome_lines)
        except UnreadableArticle as error:
            yield Skipped(f"{shown}:{number}", str(error))
            continue
        if article.id in used_ids:
            article = _with_id(article, f"{article.id}~{number}")
        used_ids.add(article.id)
        yield replace(article, raw_hash=line_hash)


def parse_record(raw: bytes, number: int) -> dict[str, Any]:
    """One line as a dict with a non-empty text, or UnreadableArticle naming the line."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UnreadableArticle(f"line {number}: not UTF-8 ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise UnreadableArticle(f"line {number}: invalid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise UnreadableArticle(f"line {number}: not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UnreadableArticle(f"line {number}: no text")
    return record


def _first_pass(path: Path, max_bytes: int) -> Iterator[str]:
    """Every article text, streamed; refuses a file in which no line is an article."""
    good = bad = 0
    for number, raw in _numbered_lines(path, max_bytes):
        try:
            text = parse_record(raw, number)["text"]
        except UnreadableArticle:
            bad += 1
            continue
        good += 1
        yield normalise_text(text)
    if not good:
        raise UnreadableArticle(
            "not an articles JSONL (no line holds an article)" if bad else "empty file"
        )


def _numbered_lines(path: Path, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers; gzip inflation bounded."""
    limit = max_bytes * INFLATE_FACTOR
    total = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):
                total += len(line)
                if total > limit:
                    raise UnreadableArticle(
                        f"file too large once decompressed (over {limit // 1048576} MB)"
                    )
                if line.strip():
                    yield number, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UnreadableArticle(f"broken gzip file ({error})") from error


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _article(
    record: dict[str, Any], number: int, shown: str, chrome_lines: frozenset[str]
) -> Article:
    title = _text_field(record, "title")
    clean = clean_article_text(
        normalise_text(record["text"]), title_hint=title, chrome_lines=chrome_lines
    )
    if not clean.text:
        raise UnreadableArticle(f"line {number}: no article text left after removing page chrome")
    garbled = garbled_reason(clean.text)
    if garbled:
        raise UnreadableArticle(f"line {number}: {garbled}")
    url = _text_field(record, "url")
    return Article(
        id=_text_field(record, "id") or f"{Path(shown).name}-{number}",
        title=strip_site_suffix(title) if title else (clean.title or f"Article {number}"),
        text=clean.text,
        author=authors_text(record.get("authors", record.get("author"))) or clean.author,
        published=find_date(_text_field(record, "published") or "") or clean.published,
        url=url,
        path=shown,
        source=_source(record, url),
        headings=clean.headings,
    )


def authors_text(value: Any) -> str | None:
    """Authors as one string; entries that only glue others together are dropped.

    Scrapers often give ["Christina Maxouris Holly Yan", "Christina Maxouris", "Holly Yan"].
    """
    if isinstance(value, str):
        return collapse_spaces(value) or None
    if not isinstance(value, list):
        return None
    names = [collapse_spaces(str(name)) for name in value if isinstance(name, str | int)]
    names = list(dict.fromkeys(name for name in names if name))
    kept = [name for name in names if not any(other != name and other in name for other in names)]
    return ", ".join(kept) or None


def _text_field(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = collapse_spaces(str(value))
        return text or None
    return None


def _source(record: dict[str, Any], url: str | None) -> str | None:
    named = _text_field(record, "source")
    if named:
        return named
    if url:
        host = urlparse(url).hostname or ""
        return host.removeprefix("www.") or None
    return None


def _with_id(article: Article, new_id: str) -> Article:
    return replace(article, id=new_id)
