"""Phrases of the kind a question asks for (a name, a date, a number, a place) in a sentence."""

from __future__ import annotations

import re

from bot.question import AnswerKind, Question
from index.keyword import tokenize

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_TIME = re.compile(
    rf"\b(?:{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}\s+{_MONTHS}"
    rf"(?:\s+\d{{4}})?|{_MONTHS}\s+\d{{4}}|(?:in|since|by|until|from|before|after|"
    rf"during)\s+(?:the\s+)?(?:1[89]|20)\d\d(?:s)?|(?:1[89]|20)\d\d|{_WEEKDAYS}|"
    r"\d{1,2}(?::\d\d)?\s*(?:a\.m\.|p\.m\.|am|pm)|(?:next|last|this)\s+(?:week|month|year|"
    r"spring|summer|fall|autumn|winter)|(?:early|mid|late)[ -](?:\d{4}|" + _MONTHS + r")|"
    # Times said relative to the article's day ("began the harvest early").
    r"yesterday|today|tonight|tomorrow|recently|early|earlier|soon|"
    r"(?:this|last|next)\s+(?:morning|afternoon|evening|night|weekend)|"
    r"(?:\w+\s+)?(?:days?|weeks?|months?|years?|decades?)\s+ago)\b"
)
_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|"
    r"thousands?|millions?|billions?|half|a third|a quarter)"
)
# The word after a number is its unit ("150,000 residents", "20 GB"), unless it is a small
# word ("$4.99 a month": the phrase is "$4.99") or a name ("150,000 Jackson residents").
_UNIT = r"(?!(?:a|an|the|and|or|of|to|in|on|at|by|for|from|with|as|is|was|were|are)\b)"
_QUANTITY = re.compile(
    r"(?:[$€£¥]\s?)?\b\d[\d,.]*(?:\s?(?:%|percent|per cent|million|billion|trillion|"
    r"thousand|hundred|" + _UNIT + r"(?:[a-z]+|[A-Z]{1,3}\b)))?"
    r"|\b" + _NUMBER_WORDS + r"(?:\s+(?:percent|million|billion|thousand|hundred|"
    + _UNIT + r"[a-z]+))?\b"
)
# A run of capitalised words, with the small words names contain ("Bank of England").
_NAME = re.compile(
    r"\b[A-Z][\w'’.-]*[\w](?:(?:\s+(?:of|de|la|the|von|van|and|&|for|al|bin|del|du))?"
    r"\s+[A-Z][\w'’.-]*[\w])*"
)
_PLACE_CUE = re.compile(r"\b(?:in|at|from|near|across|outside|inside|to)\s+(?:the\s+)?$")
# Capitalised words that are not names wherever they stand.
_NOT_NAMES = frozenset({
    "The", "A", "An", "This", "That", "These", "Those", "It", "Its", "He", "She", "They",
    "We", "I", "You", "His", "Her", "Their", "Our", "But", "And", "Or", "If", "When", "Where",
    "While", "After", "Before", "Since", "As", "At", "In", "On", "Of", "For", "From", "By",
    "With", "Without", "To", "Mr", "Mrs", "Ms", "Dr", "CNN", "AP", "Reuters", "AFP", "Getty",
    "Images", "Photo", "Video", "Read", "More", "Sign", "Click", "Here",
})
_REASON = re.compile(
    r"\b(?:because|due to|owing to|as a result|caused by|after|amid|over concerns|in order to|"
    r"so that|since|blamed|led to|citing|thanks to)\b",
    re.IGNORECASE,
)


def asked_for(question: Question, sentence: str) -> tuple[int, int] | None:
    """The span of the first phrase in `sentence` of the kind `question` asks for, made of
    words the question does not already hold; None when there is none (or the kind has no
    phrase: "what" and "why" questions)."""
    known = question.words
    for start, end in _spans(question.kind, question.target, sentence):
        words = tokenize([sentence[start:end]])[0]
        if words and not set(words) <= known:
            return start, end
    return None


def gives_reason(sentence: str) -> bool:
    """Whether a sentence states a cause or purpose (what a "why" question asks)."""
    return bool(_REASON.search(sentence))


def _spans(kind: AnswerKind, target: str | None, sentence: str) -> list[tuple[int, int]]:
    if kind == "time":
        return [m.span() for m in _TIME.finditer(sentence)]
    if kind == "quantity":
        spans = [m.span() for m in _QUANTITY.finditer(sentence)
                 if _has_number(m.group(0)) and not _in_name(sentence, m.start())]
        if target:  # "how many moons": "five moons" before "Voyager 2"
            counted = re.compile(r"\b" + re.escape(_stem(target)), re.IGNORECASE)
            spans.sort(key=lambda span: counted.search(sentence[span[0] : span[1]]) is None)
        return spans
    if kind in ("person", "named", "place"):
        names = [_trimmed(sentence, *m.span()) for m in _NAME.finditer(sentence)
                 if _is_name(sentence, *m.span())]
        if kind == "place":  # a name after "in", "at the"…: a place, not a person
            return [s for s in names if _PLACE_CUE.search(sentence[max(0, s[0] - 16) : s[0]])]
        if kind == "named":
            return _named_target(sentence, target, names) if target else []
        return names
    return []


def _trimmed(sentence: str, start: int, end: int) -> tuple[int, int]:
    """A name's span without a leading article and a trailing possessive."""
    lead = re.match(r"(?:The|A|An)\s+", sentence[start:end])
    if lead and end - start > lead.end():
        start += lead.end()
    for suffix in ("'s", "’s"):
        if sentence[start:end].endswith(suffix):
            end -= len(suffix)
    return start, end


def _stem(noun: str) -> str:
    """A plural's stem, enough to match the singular too ("moons" -> "moon")."""
    return noun[:-1] if noun.endswith("s") and len(noun) > 3 else noun


def _in_name(sentence: str, start: int) -> bool:
    """Whether a number belongs to the name before it ("Voyager 2", "Artemis 1")."""
    before = re.search(r"\b([A-Z][\w-]*)\s+$", sentence[:start])
    return before is not None and before.group(1) not in _NOT_NAMES


def _has_number(text: str) -> bool:
    return any(ch.isdigit() for ch in text) or bool(re.search(_NUMBER_WORDS, text, re.I))


def _is_name(sentence: str, start: int, end: int) -> bool:
    words = sentence[start:end].split()
    if all(w.strip(".,'’") in _NOT_NAMES for w in words):
        return False
    # A lone capitalised word opening the sentence is most often just a capital letter.
    return not (start == 0 and len(words) == 1)


def _named_target(sentence: str, target: str, names: list[tuple[int, int]]
                  ) -> list[tuple[int, int]]:
    """For "which diet…": a name right before the noun ("the Mediterranean diet") or right
    after it ("meal kit service Daily Harvest"). A name elsewhere in the sentence may be
    anything: better no phrase than a wrong one."""
    noun = re.compile(re.escape(_stem(target)) + r"\w*", re.IGNORECASE)
    spans = []
    for start, end in names:
        after = re.match(r"\s+", sentence[end:])
        gap = after.end() if after else 0
        tail = noun.match(sentence, end + gap)
        if tail is not None:
            spans.append((start, tail.end()))
            continue
        before = re.search(r"\b" + noun.pattern + r"\s+$", sentence[:start], re.IGNORECASE)
        if before is not None:
            spans.append((start, end))
    return spans
