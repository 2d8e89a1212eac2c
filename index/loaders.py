"""Turn files, folders and articles JSONL into clean `Article`s, and bad inputs into `Skipped`."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from index.articles_jsonl import INFLATE_FACTOR, iter_jsonl_articles
from index.cleaning import CleanText, clean_article_text, clean_paragraphs
from index.encoding import decode_text, garbled_reason
from index.errors import UnreadableArticle
from index.formats import Extracted, read_html, read_markdown
from index.models import Article, Skipped, Unchanged
from index.pdf import read_pdf
from index.raw_hash import raw_hash

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_TEXT = frozenset({".txt", ".text"})
_MARKDOWN = frozenset({".md", ".markdown"})
_HTML = frozenset({".html", ".htm", ".xhtml"})
_JSONL = frozenset({".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"})
SUPPORTED_SUFFIXES: frozenset[str] = _TEXT | _MARKDOWN | _HTML | _JSONL | {".pdf"}
# Formats people keep articles in that we cannot read: reported, where other unknown
# files in a folder (images, spreadsheets) are passed over in silence.
_ARTICLE_LIKE = frozenset(
    {".doc", ".docx", ".odt", ".rtf", ".epub", ".mht", ".mhtml", ".webarchive", ".pages", ".json"}
)


def iter_articles(
    paths: Sequence[Path],
    *,
    corpus_root: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    known: Mapping[str, str] | None = None,
) -> Iterator[Article | Skipped | Unchanged]:
    """Walk files/folders/JSONL given, yield an Article per readable item and a Skipped
    (path, one-line reason) per bad one; never raises for one bad file.

    `known` maps the raw hashes (index/raw_hash.py) of inputs indexed before to their
    article ids: such an input yields Unchanged, without being decoded or cleaned.
    """
    used_ids: dict[str, str] = {}
    known = known or {}
    for given in paths:
        path = Path(given)
        for item in _iter_path(path, corpus_root, max_bytes, known):
            if isinstance(item, Article):
                yield _unique(item, used_ids)
            else:
                if isinstance(item, Unchanged):
                    used_ids.setdefault(item.id, item.path or "")
                yield item


def load_file(
    path: Path, *, corpus_root: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Article]:
    """The articles of one file (several for a JSONL); raises UnreadableArticle for a bad file.

    A JSONL's bad lines are left out here; `iter_articles` reports them one by one.
    """
    path = Path(path)
    suffix = format_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableArticle(f"unsupported file type {suffix or '(no extension)'}")
    if suffix in _JSONL:
        _checked_size(path, max_bytes * INFLATE_FACTOR)  # per-article cap: see _load_safely
        items = list(iter_jsonl_articles(path, display_path(path), max_bytes=max_bytes))
        articles = [item for item in items if isinstance(item, Article)]
        if not articles:
            reasons = [item.reason for item in items if isinstance(item, Skipped)]
            raise UnreadableArticle(reasons[0] if reasons else "no articles in the file")
        return articles
    size = _checked_size(path, max_bytes)
    if size == 0:
        raise UnreadableArticle("empty file")
    data = path.read_bytes()
    article = _read_article(path, suffix, data, corpus_root)
    return [replace(article, raw_hash=_file_hash(path, corpus_root, data))]


def _file_hash(path: Path, corpus_root: Path | None, data: bytes) -> str:
    return raw_hash(f"{display_path(path)}|{article_id(path, corpus_root)}", data)


def _unchanged_file(
    path: Path, corpus_root: Path | None, max_bytes: int, known: Mapping[str, str]
) -> Unchanged | None:
    """The file as Unchanged when its bytes, at its path, were indexed before."""
    if not known or path.stat().st_size > max_bytes:
        return None
    indexed_as = known.get(_file_hash(path, corpus_root, path.read_bytes()))
    return None if indexed_as is None else Unchanged(indexed_as, display_path(path))


def format_suffix(path: Path) -> str:
    """The lower-case suffix that decides the reader, two-part for `.jsonl.gz`."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    double = "".join(suffixes[-2:])
    if double in _JSONL:
        return double
    return suffixes[-1] if suffixes else ""


def display_path(path: Path) -> str:
    """The path as given, relative to the working directory when it lies under it, posix."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return Path(os.path.normpath(path)).as_posix()


def article_id(path: Path, corpus_root: Path | None) -> str:
    """The file's path under the corpus root (`world/report.txt`), else the path as shown:
    never its stem alone, so no file can take the place of another file's article."""
    if corpus_root is not None:
        try:
            return path.absolute().relative_to(corpus_root.absolute()).as_posix()
        except ValueError:
            pass
    return display_path(path)


def _iter_path(
    path: Path, corpus_root: Path | None, max_bytes: int, known: Mapping[str, str]
) -> Iterator[Article | Skipped | Unchanged]:
    shown = display_path(path)
    if not path.exists():
        reason = "broken symlink" if path.is_symlink() else "no such file or folder"
        yield Skipped(shown, reason)
        return
    if corpus_root is not None and path.is_symlink() and not _inside(path, corpus_root):
        yield Skipped(shown, "symlink points outside the corpus folder")
        return
    if path.is_dir():
        root = corpus_root if corpus_root is not None else path
        yield from _walk(path, root, max_bytes, known, visited=set())
        return
    yield from _load_safely(path, corpus_root, max_bytes, known)


def _walk(
    folder: Path, root: Path, max_bytes: int, known: Mapping[str, str], *, visited: set[Path]
) -> Iterator[Article | Skipped | Unchanged]:
    real = folder.resolve()
    if real in visited:
        return
    visited.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        yield Skipped(display_path(folder), f"cannot list folder ({error.strerror or error})")
        return
    for entry in entries:
        if _ignored_name(entry.name):
            continue
        if entry.is_symlink():
            problem = _symlink_problem(entry, root)
            if problem:
                yield Skipped(display_path(entry), problem)
                continue
        if entry.is_dir():
            yield from _walk(entry, root, max_bytes, known, visited=visited)
        elif format_suffix(entry) in SUPPORTED_SUFFIXES:
            yield from _load_safely(entry, root, max_bytes, known)
        elif format_suffix(entry) in _ARTICLE_LIKE:
            yield Skipped(display_path(entry), f"unsupported file type {format_suffix(entry)}")


def _ignored_name(name: str) -> bool:
    """Hidden files and folders (.git, .DS_Store) and editors' temporary files."""
    return name.startswith((".", "~$")) or name.endswith("~")


def _symlink_problem(entry: Path, root: Path) -> str | None:
    if not entry.exists():
        return "broken symlink"
    if not _inside(entry, root):
        return "symlink points outside the corpus folder"
    return None


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _load_safely(
    path: Path, corpus_root: Path | None, max_bytes: int, known: Mapping[str, str]
) -> Iterator[Article | Skipped | Unchanged]:
    shown = display_path(path)
    try:
        if format_suffix(path) in _JSONL:
            # A JSONL holds a whole corpus: the size cap is per article (per line), and
            # the file gets the allowance a gzipped one has once inflated.
            _checked_size(path, max_bytes * INFLATE_FACTOR)
            yield from iter_jsonl_articles(path, shown, max_bytes=max_bytes, known=known)
            return
        unchanged = _unchanged_file(path, corpus_root, max_bytes, known)
        if unchanged is not None:
            yield unchanged
            return
        yield from load_file(path, corpus_root=corpus_root, max_bytes=max_bytes)
    except UnreadableArticle as error:
        yield Skipped(shown, str(error))
    except OSError as error:
        yield Skipped(shown, f"cannot read file ({error.strerror or error})")
    except Exception as error:  # one bad file must never stop an ingest
        log.warning("unexpected error reading %r", shown, exc_info=True)
        yield Skipped(shown, f"could not read ({type(error).__name__}: {error})"[:200])


def _checked_size(path: Path, max_bytes: int) -> int:
    size = path.stat().st_size
    if size > max_bytes:
        raise UnreadableArticle(
            f"file too large ({_human(size)}; the limit is {_human(max_bytes)})"
        )
    return size


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1048576:.1f} MB"


def _read_article(path: Path, suffix: str, data: bytes, corpus_root: Path | None) -> Article:
    if suffix == ".pdf":
        extracted = read_pdf(data)
    else:
        text = decode_text(data)
        if not text.strip():
            raise UnreadableArticle("empty file (only whitespace)")
        if suffix in _MARKDOWN:
            extracted = read_markdown(text)
        elif suffix in _HTML:
            extracted = read_html(text)
        else:
            return _article_from(path, corpus_root, Extracted(), clean_article_text(text))
    clean = clean_paragraphs(
        extracted.paragraphs, title_hint=extracted.title, page_count=extracted.page_count
    )
    return _article_from(path, corpus_root, extracted, clean)


def _article_from(
    path: Path, corpus_root: Path | None, extracted: Extracted, clean: CleanText
) -> Article:
    if not clean.text.strip():
        raise UnreadableArticle("no article text found (only page chrome or markup)")
    garbled = garbled_reason(clean.text)
    if garbled:
        raise UnreadableArticle(garbled)
    return Article(
        id=article_id(path, corpus_root),
        title=extracted.title or clean.title or title_from_name(path),
        text=clean.text,
        author=extracted.author or clean.author,
        published=extracted.published or clean.published,
        url=extracted.url,
        path=display_path(path),
        source=extracted.source,
        headings=clean.headings,
        pages=clean.pages,
    )


def title_from_name(path: Path) -> str:
    """Last resort: `mexico-canada-critical-minerals.txt` → "Mexico canada critical minerals"."""
    suffix = format_suffix(path)
    stem = path.name[: -len(suffix)] if suffix else path.name
    words = re.sub(r"[-_.]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]


def _unique(article: Article, used: dict[str, str]) -> Article:
    """Two items of one run with one id (a file given twice, under two spellings): the later
    gets a hash of its path."""
    owner = used.setdefault(article.id, article.path or "")
    if owner == (article.path or ""):
        return article
    fresh = f"{article.id}-{_short_hash(article.path or article.text_hash)}"
    used[fresh] = article.path or ""
    return replace(article, id=fresh)
