"""Quote verification, locating LLM quotes, and text-fragment links."""

from __future__ import annotations

from urllib.parse import unquote

from bot.quotes import locate_quote, make_citation, text_fragment_link, verify_quote
from index.models import Article

TEXT = (
    "Mexico’s recent moves to increase government control have raised concerns.\n\n"
    "“Critical minerals are the backbone of the energy transition,” one official said."
)
ARTICLE = Article(id="a", title="T", text=TEXT, url="https://example.com/story#top")


def test_verify_quote_is_exact() -> None:
    start = TEXT.index("Critical")
    end = start + len("Critical minerals")
    assert verify_quote(ARTICLE, start, end, "Critical minerals")
    assert not verify_quote(ARTICLE, start, end, "critical minerals")
    assert not verify_quote(ARTICLE, start, end + 1, "Critical minerals")
    assert not verify_quote(ARTICLE, -1, 5, TEXT[-1:5])


def test_locate_tolerates_quote_marks_and_spaces_only() -> None:
    claimed = "Mexico's recent moves to increase   government control have raised concerns."
    span = locate_quote(ARTICLE, claimed)
    assert span is not None
    assert TEXT[span[0] : span[1]] == (
        "Mexico’s recent moves to increase government control have raised concerns."
    )
    assert locate_quote(ARTICLE, "Mexico's recent moves to decrease government control") is None
    assert locate_quote(ARTICLE, '"Critical minerals are the backbone of the energy transition,"')


def test_citation_is_cut_from_the_article_with_a_fragment_link() -> None:
    start = TEXT.index("“Critical")
    end = len(TEXT)
    citation = make_citation(1, ARTICLE, start, end)
    assert citation is not None and citation.quote == TEXT[start:end]
    assert citation.link is not None
    assert citation.link.startswith("https://example.com/story#:~:text=")
    directive = citation.link.split("#:~:text=")[1]
    start_words, end_words = directive.split(",")
    assert unquote(start_words) == "“Critical minerals are the backbone"
    assert unquote(end_words) == "energy transition,” one official said."
    assert make_citation(2, ARTICLE, 5, 5) is None


def test_fragment_encodes_the_reserved_characters() -> None:
    link = text_fragment_link("https://x.org/a", "A-B & C, D")
    assert link == "https://x.org/a#:~:text=A%2DB%20%26%20C%2C%20D"
