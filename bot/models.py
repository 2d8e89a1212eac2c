"""Answers as data: the text, and the verified quotes it cites (front ends render them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from index.models import Article

Mode = Literal["extractive", "llm"]


@dataclass(frozen=True)
class ArticleRef:
    """The fields of an article a citation shows."""

    id: str
    title: str
    author: str | None
    published: str | None
    url: str | None
    path: str | None

    @classmethod
    def of(cls, article: Article) -> ArticleRef:
        return cls(
            article.id, article.title, article.author, article.published, article.url,
            article.path,
        )


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: `article.text[start:end] == quote` was checked before it was made."""

    n: int
    quote: str
    start: int
    end: int
    article: ArticleRef
    link: str | None = None
    heading: str | None = None


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up question follows: the previous question, its quotes, the ids of
    the articles they came from, and of the other articles its retrieval found."""

    question: str
    quotes: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()
    related: tuple[str, ...] = ()

    @property
    def context(self) -> str:
        """Text that steers retrieval towards the previous answer's subject."""
        return " ".join([self.question, *self.quotes])


@dataclass
class Answer:
    """What Dossier says to a question; `answered` is False when the articles don't cover it."""

    question: str
    text: str
    mode: Mode
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    # One line about how the answer was made when that matters (e.g. an LLM fallback).
    note: str | None = None
    # Every article retrieval drew the answer from, best first: the citations quote some.
    sources: list[ArticleRef] = field(default_factory=list)

    @property
    def unshown_sources(self) -> bool:
        """Whether some sources are not among the articles the citations quote."""
        cited = {c.article.id for c in self.citations}
        return any(source.id not in cited for source in self.sources)

    def to_json(self) -> dict[str, Any]:
        """The `dossier ask --json` contract."""
        out: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "answered": self.answered,
            "citations": [
                {
                    "n": c.n,
                    "quote": c.quote,
                    "start": c.start,
                    "end": c.end,
                    "article": asdict(c.article),
                    "link": c.link,
                }
                for c in self.citations
            ],
        }
        if self.note:
            out["note"] = self.note
        return out
