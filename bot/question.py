"""A question analysed once: its terms, the kind of answer it asks for, its time window,
whether it points back at the conversation, and whether it is small talk."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from bot.timeliness import phrase_window
from index.keyword import tokenize

# What kind of phrase answers a question; "thing" when the question does not say.
AnswerKind = Literal["person", "time", "place", "quantity", "named", "reason", "thing"]
SmallTalk = Literal["greeting", "thanks", "identity", "help", "goodbye", "acknowledgement"]

# Words that shape a question but say nothing about its topic (stemmed like the index).
_QUESTION_WORDS = frozenset(tokenize([
    "what which who whom whose how when where why does did do can could would should will "
    "tell me about please them they it its their this that these those he she him his her "
    "there here any some many much more most other others you your we us our i my "
    "hey hi hello ok okay so and also else name named "
    "today yesterday week weekend recent recently latest"
])[0])

# Leading words that carry no question ("hey, which of them…", "and where did he die?").
_LEAD_IN = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|and|also|but|well|now|then|please|thanks|thank you)"
    r"\b[\s,!.:;-]*)+",
    re.IGNORECASE,
)

# The last sentence that asks something: quiz questions give context first ("Police
# arrested 31 men … Where was the event?").
_ASKING = re.compile(
    r"\b(?:who|whom|whose|what|which|when|where|why|how)\b|\?", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z¿¡\"“])")

_KIND_PATTERNS: tuple[tuple[AnswerKind, re.Pattern[str]], ...] = (
    ("quantity", re.compile(
        r"\bhow (?:many|much|long|old|far|big|large|high|often|fast)\b|"
        r"\bwhat (?:is |was |are |were )?(?:the )?(?:number|percentage|percent|share|price|"
        r"cost|amount|rate|total|age|size|value|sum|magnitude|score|temperature|speed|distance|"
        r"height|population|fine|salary|budget|death toll|toll)\b|\bby how\b", re.IGNORECASE)),
    ("time", re.compile(
        r"\bwhen\b|\bwhat (?:year|date|day|month|time|decade|century)\b|"
        r"\b(?:which|in what) (?:year|date|day|month|decade)\b|\bhow long ago\b|"
        r"\bsince when\b", re.IGNORECASE)),
    ("place", re.compile(
        r"\bwhere\b|\b(?:which|what|in what|in which) (?:city|country|countries|state|states|"
        r"place|town|region|province|nation|continent|island|county|capital|location)\b",
        re.IGNORECASE)),
    ("person", re.compile(r"\bwho(?:m|se)?\b", re.IGNORECASE)),
    ("reason", re.compile(r"\bwhy\b|\bfor what reason\b|\bwhat (?:caused|led to)\b",
                          re.IGNORECASE)),
    ("named", re.compile(r"\b(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|has|have|"
                         r"had|can|could|will|would|should|of|about|else|if|this|that|"
                         r"these|those|the|a|an|it|they|he|she|we|you|i)\b)[a-z]+",
                         re.IGNORECASE)),
)
_NAMED_TARGET = re.compile(
    r"\b(?:which|what)\s+((?:[a-z-]+\s+){0,2}?[a-z-]+?)\s+(?:is|are|was|were|do|does|did|has|"
    r"have|had|can|could|will|would|should|made|won|became|got|named|called|said|announced|"
    r"[a-z]+ed|[a-z]+s)\b",
    re.IGNORECASE,
)
_COUNTED = re.compile(r"\bhow many\s+(?:more\s+|new\s+)?([a-z-]+)", re.IGNORECASE)

# Words that point back at something said before ("which of them…", "and where did he…").
_BACK_REFERENCE = re.compile(
    r"\b(?:it|its|they|them|their|theirs|these|those|he|she|him|her|his|hers|"
    r"(?:this|that)(?! (?:week|weekend|month|year|morning|afternoon|evening|time)\b)|"
    r"the same|such|which one|which ones|what else|another|other|others|there|then)\b|"
    r"^(?:and|what about|how about|and what about|what else|why|why not|how so)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_MAX_WORDS = 12
# "according to a new study", "new research suggests": news of the last weeks, even when
# the question names no date. Only the reader uses this window (an article from years
# before cannot be that new study); retrieval's date weighting reads its own phrases.
_NEWS_WINDOW = re.compile(
    r"\b(?:a |the )?(?:new|latest|recent) (?:study|studies|research|report|survey|analysis|"
    r"data|census|poll|rankings?|figures)\b",
    re.IGNORECASE,
)
_NEWS_WINDOW_DAYS = 45
# A short question about "the law", "the investigation" names something said before.
_DEFINITE = re.compile(r"\bthe\b", re.IGNORECASE)
_DEFINITE_MAX_WORDS = 8

_SMALL_TALK: tuple[tuple[SmallTalk, re.Pattern[str]], ...] = (
    ("thanks", re.compile(
        r"^(?:(?:many |great |ok |okay )?(?:thanks?|thank you|thx|ty|cheers|much appreciated|"
        r"appreciate it|merci|gracias|danke)(?: (?:so much|a lot|very much|again))?)$")),
    ("greeting", re.compile(
        r"^(?:hi|hello|hey|hiya|howdy|yo|hola|bonjour|hallo|good (?:morning|afternoon|evening|"
        r"day)|greetings|hi there|hello there|hey there|how are you|how are you doing|"
        r"how's it going|what's up|sup)(?: (?:bot|there|dossier))?$")),
    ("identity", re.compile(
        r"^(?:who are you|what are you|who made you|who built you|are you a bot|"
        r"are you human|what is your name|what's your name|introduce yourself)$")),
    ("help", re.compile(
        r"^(?:help|help me|what can you do|what do you do|how do you work|how does this work|"
        r"what can i ask|what can i ask you|what do you know|what do you know about|"
        r"how do i use this|start)$")),
    ("goodbye", re.compile(r"^(?:bye|goodbye|bye bye|see you|see ya|good night|later|cya)$")),
    ("acknowledgement", re.compile(
        r"^(?:ok|okay|k|cool|great|nice|good|got it|i see|alright|all right|perfect|awesome|"
        r"wow|interesting|lol|haha|yes|no|sure|fine)$")),
)
_NOT_WORD = re.compile(r"[^\w\s']+")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")


@dataclass(frozen=True)
class Question:
    """What a question asks, worked out once for retrieval, the reader and the answer."""

    text: str  # as asked, trimmed
    asking: str  # the part that asks (the last asking sentence, lead-in words removed)
    kind: AnswerKind
    # The noun the answer must name or count: "which diet…" -> "diet", "how many moons…"
    # -> "moons".
    target: str | None
    window_days: int | None  # "this week" -> 8: the time window the question names
    small_talk: SmallTalk | None
    points_back: bool  # short, and refers to something said before

    @cached_property
    def words(self) -> frozenset[str]:
        """Every stemmed word but stop words, question words included: what the extractive
        answer's lexical overlap counts (its weights were measured with them)."""
        return frozenset(tokenize([self.text])[0])

    @cached_property
    def terms(self) -> tuple[str, ...]:
        """Stemmed topic terms, in order, once each: no stop words, no question words."""
        seen: dict[str, None] = {}
        for term in tokenize([self.text])[0]:
            if term not in _QUESTION_WORDS:
                seen.setdefault(term)
        return tuple(seen)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Capitalised phrases after the first word: the subjects a question names."""
        body = self.asking.split(maxsplit=1)[1] if " " in self.asking else ""
        return tuple(m.group(0) for m in _CAPITALISED.finditer(body))


def analyse(text: str) -> Question:
    """Analyse a question once; every stage reads the result."""
    text = " ".join(text.split())
    asking = _asking_part(text)
    return Question(
        text=text,
        asking=asking,
        kind=_kind(asking),
        target=_target(asking),
        window_days=phrase_window(text) or (
            _NEWS_WINDOW_DAYS if _NEWS_WINDOW.search(text) else None
        ),
        small_talk=small_talk(text),
        points_back=_points_back(asking, len(text.split())),
    )


def small_talk(text: str) -> SmallTalk | None:
    """Which kind of small talk a message is, if it is nothing but that."""
    folded = " ".join(_NOT_WORD.sub(" ", text.casefold().replace("’", "'")).split())
    if not folded or len(folded.split()) > 6:
        return None
    for kind, pattern in _SMALL_TALK:
        if pattern.fullmatch(folded):
            return kind
    return None


def _points_back(asking: str, words: int) -> bool:
    if words > _FOLLOW_UP_MAX_WORDS:
        return False
    if _BACK_REFERENCE.search(asking):
        return True
    return words <= _DEFINITE_MAX_WORDS and bool(_DEFINITE.search(asking))


def _asking_part(text: str) -> str:
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    asking = next((s for s in reversed(sentences) if _ASKING.search(s)), text)
    return _LEAD_IN.sub("", asking).strip() or asking


def _kind(asking: str) -> AnswerKind:
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(asking):
            if kind == "named" and _NAMED_TARGET.search(asking) is None:
                return "thing"  # "what happened to…": no noun names what is asked
            return kind
    return "thing"


def _target(asking: str) -> str | None:
    """The noun a which/what question asks to be named ("which diet was…" -> "diet"), or
    a how-many question to be counted ("how many moons…" -> "moons")."""
    kind = _kind(asking)
    if kind == "quantity":
        counted = _COUNTED.search(asking)
        return counted.group(1).lower() if counted else None
    if kind != "named":
        return None  # also keeps _kind and _target from calling each other in a loop
    match = _NAMED_TARGET.search(asking)
    if match is None:
        return None
    words = [w for w in match.group(1).lower().split() if w not in {"the", "a", "an"}]
    return words[-1] if words else None
