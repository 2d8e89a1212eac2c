"""The quote check for LLM prose, one sentence at a time: a sentence is released only when a
quote it cites stands verbatim in its passage's article and the sentence says nothing
those quotes (or the question) don't."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from bot.llm_reply import ParsedReply
from bot.models import Citation
from bot.quotes import locate_quote, make_citation
from bot.retrieval import Retrieved
from bot.safety import LINK_LIKE, is_instruction_like, link_or_markup_spans
from index.chunking import sentence_spans
from index.keyword import tokenize
from index.models import Article

_MARKER = re.compile(r"\s*\[(\d+)\]")
# How a whole sentence ends: its final mark, then any closing quote marks or brackets.
_WHOLE_SENTENCE = re.compile(r"[.!?][\"'”’)\]]*$")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\d+\])+")
# A token with a digit, or of capitals and dashes, is specific: it must come from a quote.
_SPECIFIC = re.compile(r"\b(?=\w*\d)[\w-]{3,}\b|\b[A-Z]{2,}(?:-\w+)+\b")


class Verdict(Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    WAIT = "wait"  # a quote it cites may still come


def sentence_parts(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence by the project's splitter (blingfire: "U.S." and
    "3.5%" stay whole); a passage marker that opens a piece belongs to the sentence before."""
    parts: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        leading = _LEADING_MARKERS.match(text, start, end)
        if leading and parts:
            parts[-1] = (parts[-1][0], leading.end())
            start = leading.end()
            while start < end and text[start].isspace():
                start += 1
        if parts and start < end and _opens_quote(text, *parts[-1]):
            # blingfire leaves an opening quote mark at the end of the sentence before.
            previous_start, previous_end = parts[-1]
            start = previous_end - 1
            parts[-1] = (previous_start, len(text[previous_start:start].rstrip()) + previous_start)
        if start < end:
            parts.append((start, end))
    return parts


def _opens_quote(text: str, start: int, end: int) -> bool:
    """The piece ends with a quote mark that opens rather than closes a quotation."""
    piece = text[start:end]
    return piece[-1:] in ('"', "“") and sum(piece.count(q) for q in '"“”') % 2 == 1


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_parts(text)]


@dataclass
class SentenceVerifier:
    """Verified quotes and released sentences of one answer, numbered in order of use."""

    question: str
    retrieved: list[Retrieved]
    articles: dict[str, Article]
    sentences: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    _claimed: dict[tuple[int, str], Citation | None] = field(default_factory=dict)
    _by_passage: dict[int, list[Citation]] = field(default_factory=dict)

    def claim(self, quotes: list[tuple[int, str]]) -> None:
        """Check each newly claimed quote, once. It is looked for in its passage's article,
        then in the other passages' (small models write wrong passage numbers); a verified
        quote backs the sentences marked with the number claimed and the one it stands in."""
        for n, text in quotes:
            if (n, text) in self._claimed:
                continue
            found = self._verify(n, text)
            self._claimed[(n, text)] = found[1] if found else None
            if found is not None:
                for number in dict.fromkeys((n, found[0])):
                    self._back(number, found[1])

    def _back(self, n: int, citation: Citation) -> None:
        """Let sentences marked [n] lean on `citation` (once per span)."""
        backing = self._by_passage.setdefault(n, [])
        if all(c.start != citation.start or c.end != citation.end
               or c.article.id != citation.article.id for c in backing):
            backing.append(citation)

    def _verify(self, n: int, text: str) -> tuple[int, Citation] | None:
        """(the passage it stands in, its citation): the claimed passage first."""
        numbers = range(1, len(self.retrieved) + 1)
        for number in sorted(numbers, key=lambda m: m != n):
            citation = self._verify_in(number, text)
            if citation is not None:
                return number, citation
        return None

    def _verify_in(self, n: int, text: str, *, whole: bool = False) -> Citation | None:
        """`text` (its verbatim leading sentences, unless `whole`) in passage n's article."""
        passage = self.retrieved[n - 1].passage
        article = self.articles.get(passage.article_id)
        if article is None:
            return None
        if whole:
            span = locate_quote(article, text, near=passage.start)
        else:
            span = _verbatim_lead(article, text, near=passage.start)
        if span is None or is_instruction_like(article.text[span[0] : span[1]]):
            return None
        return make_citation(0, article, *span, heading=passage.heading)

    def judge(self, sentence: str, *, settled: bool) -> Verdict:
        """Accept (and keep) `sentence`, reject it, or wait for quotes still to come."""
        if link_or_markup_spans(sentence):
            return Verdict.REJECT  # the quotes may show a link; the prose never carries one
        markers = [int(m) for m in _MARKER.findall(sentence)]
        if not markers:
            return self._copied(sentence)
        chosen = {n: self._best(n, sentence) for n in dict.fromkeys(markers)}
        backed = {n: c for n, c in chosen.items() if c is not None}
        if not backed or not self._grounded(sentence, list(backed.values())):
            return Verdict.REJECT if settled else Verdict.WAIT
        numbers = {n: self._number(c) for n, c in backed.items()}

        def renumbered(match: re.Match[str]) -> str:
            new = numbers.get(int(match.group(1)))
            return f" [{new}]" if new is not None else ""

        self.sentences.append(_MARKER.sub(renumbered, sentence).strip())
        return Verdict.ACCEPT

    def _copied(self, sentence: str) -> Verdict:
        """A sentence without a marker is shown only when it is itself a whole sentence
        copied verbatim from a passage: then it is its own quote. Any other unmarked prose
        is dropped, whatever it says (a fragment cut off mid-sentence too)."""
        sentence = sentence.strip()
        if not _WHOLE_SENTENCE.search(sentence):
            return Verdict.REJECT
        for number in range(1, len(self.retrieved) + 1):
            citation = self._verify_in(number, sentence, whole=True)
            if citation is not None:
                self._back(number, citation)
                shown = self._number(citation)
                body = _WHOLE_SENTENCE.sub("", sentence)
                ending = sentence[len(body) :]
                self.sentences.append(f"{body} [{shown}]{ending}")
                return Verdict.ACCEPT
        return Verdict.REJECT

    def _best(self, n: int, sentence: str) -> Citation | None:
        """The passage's verified quote this sentence leans on: one it quotes, else the
        one sharing most words with it."""
        candidates = self._by_passage.get(n, [])
        for c in candidates:
            if c.quote in sentence:
                return c
        if not candidates:
            return None
        words = set(tokenize([sentence])[0])
        return max(candidates, key=lambda c: len(words & set(tokenize([c.quote])[0])))

    def _grounded(self, sentence: str, backing: list[Citation]) -> bool:
        prose = _MARKER.sub("", sentence).strip()
        # What stands only inside a link (a token in a URL) supports nothing.
        support = LINK_LIKE.sub(" ", " ".join([self.question, *(c.quote for c in backing)]))
        if any(token not in support for token in _SPECIFIC.findall(prose)):
            return False  # a number or code the quotes don't carry: not grounded
        words = set(tokenize([prose])[0])
        if not words:
            return False
        return len(words & set(tokenize([support])[0])) / len(words) >= 0.5

    def _number(self, citation: Citation) -> int:
        for shown in self.citations:
            if (shown.article.id, shown.start, shown.end) == (
                citation.article.id, citation.start, citation.end
            ):
                return shown.n
        n = len(self.citations) + 1
        self.citations.append(Citation(n, citation.quote, citation.start, citation.end,
                                       citation.article, citation.link, citation.heading))
        return n

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _verbatim_lead(article: Article, claimed: str, near: int) -> tuple[int, int] | None:
    """Where the claimed quote stands in the article; else where its longest run of
    leading whole sentences does (a small model copies a sentence, then runs on in words
    of its own: the copied part is shown, the rest never is)."""
    span = locate_quote(article, claimed, near=near)
    if span is not None:
        return span
    ends = [end for _, end in sentence_spans(claimed)][:-1]
    for end in reversed(ends):
        span = locate_quote(article, claimed[:end], near=near)
        if span is not None:
            return span
    return None


class VerifiedStream:
    """Feeds a growing ParsedReply to a SentenceVerifier and returns, each time, the
    sentences newly released, in the order written: a sentence waiting for its quote holds
    back those after it."""

    def __init__(self, verifier: SentenceVerifier) -> None:
        self.verifier = verifier
        self._done = 0  # characters of the answer already judged
        self.cannot_answer = False

    def feed(self, reply: ParsedReply, *, final: bool) -> list[str]:
        if reply.cannot_answer:
            self.cannot_answer = True
            return []
        self.verifier.claim(reply.quotes)
        rest = reply.answer[self._done :]
        parts = sentence_parts(rest)
        if not final and parts:
            parts = parts[:-1]  # the sentence being written
        released: list[str] = []
        cursor = 0
        settled = final or reply.quotes_settled
        for start, end in parts:
            verdict = self.verifier.judge(rest[start:end], settled=settled)
            if verdict is Verdict.WAIT:
                break
            cursor = end
            if verdict is Verdict.ACCEPT:
                released.append(self.verifier.sentences[-1])
        self._done += cursor
        return released
