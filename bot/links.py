"""Text-fragment links (#:~:text=start,end) that scroll a browser to a quote."""

from __future__ import annotations

from urllib.parse import quote as percent_encode

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
