"""The data that flows through indexing: articles, their sections and passages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

Span = tuple[int, int]


@dataclass(frozen=True)
class Article:
    """One news article with its clean text; every offset in Dossier points into `text`."""

    id: str
    title: str
    text: str
    author: str | None = None
    published: str | None = None
    url: str | None = None
    path: str | None = None
    source: str | None = None
    # [start, end) of section headings kept in `text` ("Challenges Ahead"): context for
    # retrieval and for the answer's lead line.
    headings: tuple[Span, ...] = ()
    # Start offset of each PDF page in `text` (page n starts at pages[n-1]).
    pages: tuple[int, ...] = ()
    # Hash of the bytes it was read from (index/raw_hash.py): an unchanged input is not
    # read again. Not part of `content_hash`: the index holds what was read, not how.
    raw_hash: str = ""

    @property
    def content_hash(self) -> str:
        """Hash of everything that ends up in the index, so unchanged articles are skipped."""
        digest = hashlib.sha256()
        for part in (self.title, self.author, self.published, self.url, self.source, self.text):
            digest.update((part or "").encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        digest.update(repr((self.headings, self.pages)).encode())
        return digest.hexdigest()

    @property
    def text_hash(self) -> str:
        """Hash of the text alone: the same article under two names shares it."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()

    def heading_before(self, offset: int) -> str | None:
        """The nearest section heading that starts before `offset`, if any."""
        best: str | None = None
        for start, end in self.headings:
            if start > offset:
                break
            best = self.text[start:end]
        return best


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: `article.text[start:end] == text`, within the model window."""

    article_id: str
    index: int
    start: int
    end: int
    text: str
    heading: str | None = None
    # Absolute [start, end) offsets of the passage's sentences in the article text.
    sentences: tuple[Span, ...] = field(default=())

    @property
    def id(self) -> str:
        """Content-derived id: re-ingesting the same passage yields the same id."""
        digest = hashlib.sha1(f"{self.start}:{self.text}".encode("utf-8", "surrogatepass"))
        return f"{self.article_id}:{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class Unchanged:
    """An input whose exact bytes were indexed before as article `id`: not read again."""

    id: str
    path: str | None


@dataclass(frozen=True)
class Skipped:
    """An input that could not be indexed, with the one-line reason shown to the user."""

    path: str
    reason: str
