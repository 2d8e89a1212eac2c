"""Quote verification (a quote is shown only if it stands verbatim in its article) and the
text-fragment links (#:~:text=start,end) that scroll a browser to it."""

from __future__ import annotations

import re
from urllib.parse import quote as percent_encode

from bot.models import ArticleRef, Citation
from index.models import Article

# Curly and straight quote marks, dashes and spaces that an LLM may swap for each other.
_EQUIVALENT = str.maketrans(
    {
        "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
        "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
        "–": "-", "—": "-", "‑": "-", "\u00a0": " ",
    }
)
_SPACE = re.compile(r"\s+")


def verify_quote(article: Article, start: int, end: int, quote: str) -> bool:
    """The promise itself: the quote is exactly the article's text at its offsets."""
    return 0 <= start < end <= len(article.text) and article.text[start:end] == quote


def _normalised_with_map(text: str) -> tuple[str, list[int]]:
    """Text with quote marks unified and whitespace runs folded, and for each character of
    the result the offset of the original character it came from."""
    out: list[str] = []
    origin: list[int] = []
    previous_space = False
    for i, ch in enumerate(text.translate(_EQUIVALENT)):
        if ch.isspace():
            if previous_space:
                continue
            ch = " "
            previous_space = True
        else:
            previous_space = False
        out.append(ch)
        origin.append(i)
    return "".join(out), origin


def locate_quote(article: Article, quote: str, near: int = 0) -> tuple[int, int] | None:
    """Exact [start, end) of `quote` in the article, tolerating only whitespace and
    quote-mark differences; the occurrence closest to `near` wins. None if absent."""
    needle = quote.strip().strip("\"'“”‘’").strip()
    if len(needle) < 8:
        return None  # too short to be a quote worth showing, too easy to match by chance
    exact = _closest(article.text, needle, near)
    if exact is not None:
        return exact, exact + len(needle)
    haystack, origin = _normalised_with_map(article.text)
    folded = _SPACE.sub(" ", needle.translate(_EQUIVALENT))
    found = _closest(haystack, folded, near, origin)
    if found is None:
        return None
    start = origin[found]
    end = origin[found + len(folded) - 1] + 1
    return start, end


def _closest(
    haystack: str, needle: str, near: int, origin: list[int] | None = None
) -> int | None:
    best: int | None = None
    at = haystack.find(needle)
    while at >= 0:
        real = origin[at] if origin is not None else at
        if best is None or abs(real - near) < abs(_real(best, origin) - near):
            best = at
        at = haystack.find(needle, at + 1)
    return best


def _real(at: int, origin: list[int] | None) -> int:
    return origin[at] if origin is not None else at


def make_citation(
    n: int, article: Article, start: int, end: int, *, heading: str | None = None
) -> Citation | None:
    """A Citation cut from the article at [start, end), or None if it fails the check."""
    quote = article.text[start:end]
    if not quote.strip() or not verify_quote(article, start, end, quote):
        return None
    link = text_fragment_link(article.url, quote) if article.url else None
    return Citation(n, quote, start, end, ArticleRef.of(article), link, heading)


# The Text Fragments spec reserves '-', '&' and ',' inside a directive; percent-encode
# them along with everything that is not an unreserved URL character.
_SAFE = ""
_EDGE_WORDS = 5


def _encode(text: str) -> str:
    return percent_encode(text, safe=_SAFE).replace("-", "%2D")


def text_fragment_link(url: str, quote: str) -> str:
    """`url` with a text directive for `quote`: the whole quote when short, else its first
    and last few words as textStart,textEnd (long directives break in some browsers)."""
    base = url.split("#", 1)[0]
    words = quote.split()
    if len(words) <= 2 * _EDGE_WORDS:
        directive = _encode(" ".join(words))
    else:
        start = " ".join(words[:_EDGE_WORDS])
        end = " ".join(words[-_EDGE_WORDS:])
        directive = f"{_encode(start)},{_encode(end)}"
    return f"{base}#:~:text={directive}"
