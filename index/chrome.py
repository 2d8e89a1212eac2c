"""What page chrome looks like, one paragraph at a time: vocabulary, captions, bylines, dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache


@dataclass(frozen=True)
class _Rule:
    """A chrome phrase: a regex, tried only when one of its cheap lower-case anchors occurs."""

    anchors: tuple[str, ...]
    pattern: re.Pattern[str]

    def found_in(self, text: str, lowered: str) -> bool:
        return any(a in lowered for a in self.anchors) and bool(self.pattern.search(text))


def _rules(*rules: tuple[str, str]) -> tuple[_Rule, ...]:
    return tuple(
        _Rule(tuple(anchors.split("|")), re.compile(pattern, re.IGNORECASE))
        for anchors, pattern in rules
    )


# Phrases that rarely occur in a news sentence but fill newsletter boxes, video players,
# comment widgets, share bars and footers: each one found counts 2.
_STRONG = _rules(
    ("sign", r"\bsign(?:ing)? up\b"),
    ("newsletter", r"\bnewsletters?\b"),
    (
        "subscribe",
        r"\bsubscribe\b(?= (?:now|today|here|to (?:our|the)\b))|\bsubscribe (?:&|and) save\b",
    ),
    (
        "to your",
        r"\b(?:delivered|sent|straight)\b[\w ]{0,15}\bto your (?:inbox|phone|email)(?:es)?\b",
    ),
    ("inbox|text message", r"\bin your inbox(?:es)?\b|\btext message alerts\b"),
    (
        "reach|contact",
        r"\bcan be reached\b|^(?:reach|contact)\b[^.]{0,60}\bat\b"
        r"|\b(?:reach|contact) (?:him|her|them|me) at\b",
    ),
    ("-", r"\(\d{3}\) \d{3}-\d{4}|\b\d{3}-\d{3}-\d{4}\b"),
    ("©|copyright", r"©|\bcopyright\s+(?:©\s*)?\d{4}"),
    (
        "privacy|terms",
        r"\bprivacy (?:policy|notice|settings)\b|\bterms (?:of|and conditions) (?:use|service)\b",
    ),
    ("cookie", r"\bcookie (?:policy|settings|preferences|notice)\b"),
    ("cookie", r"\buses? cookies\b"),
    ("cookie", r"\baccept (?:all )?cookies\b"),
    ("ad-free|skip", r"\bad-free\b|\bskip (?:ad|advertisement)\b"),
    (
        "here|read more|learn more|continue reading",
        r"\b(?:click|tap) here\b|(?:^|[.!?(]\s*)(?:read|learn) more\b|\bcontinue reading\b",
    ),
    # A sentence that tells the reader to click: "Check your local forecast here."
    (
        "here",
        r"(?:^|[.!?]\s+)\W*(?:check|find|see|get|watch|listen|read|learn|click|tap)\b"
        r"[^.!?]{0,50}\bhere\W*$",
    ),
    ("see more", r"\bsee more\b(?=\s*(?:$|photos|videos|stories|here|coverage|:))"),
    (
        "continues below|full story|full article",
        r"\bstory continues below\b|\bread (?:the )?full (?:story|article)\b",
    ),
    (">>>|»", r">>>|»\s*$"),
    (
        "follow|find us|join us|like us|our page",
        r"\bfollow (?:us|me)\b|\bfind us on\b|\bjoin us on\b|\blike (?:us|our page) on\b",
    ),
    ("follow", r"\bfollow\b[^.]{0,50}\bon (?:twitter|facebook|instagram|tiktok|linkedin)\b"),
    (
        "share|copy link",
        r"\bshare (?:this|on (?:twitter|facebook|whatsapp|linkedin|email)|via)\b|\bcopy link\b",
    ),
    ("log|account", r"\blog ?in to\b|\bcreate (?:a free|an) account\b"),
    (
        "subscriber",
        r"\bsubscribers? only\b|\bfor subscribers\b|\bbecome a (?:digital )?subscriber\b",
    ),
    (
        "comment|insights|reply|conversation",
        r"\b(?:add|leave|post) (?:a|your) (?:comment|insights|reply)\b|\bstart the conversation\b",
    ),
    (
        "conversation|discussion|reader",
        r"\bjoin the (?:conversation|discussion)\b|\breader (?:insights|comments)\b",
    ),
    (
        "reading time|reporting by|editing by|contributing:",
        r"\breading time\b|\b(?:reporting|editing) by\b|^contributing:",
    ),
    (
        "stories|articles|content|videos|reading|coverage",
        r"\b(?:recommended|related|more) (?:stories|articles|content|videos|reading|coverage)\b",
    ),
    (
        "like|most |read next",
        r"\byou (?:may|might) (?:also )?like\b|\bmost (?:read|popular|viewed)\b|\bread next\b",
    ),
    (
        "app|google play",
        r"\bdownload (?:the|our) app\b|\bget the app\b|\bapp store\b|\bgoogle play\b",
    ),
    ("sponsored|paid", r"\bsponsored content\b|\bpaid (?:content|partnership|post)\b"),
    (
        "purchases|commission|affiliate",
        r"\bpurchases you make through\b|\bearn (?:us )?a commission\b|\baffiliate links?\b",
    ),
    ("expressed|necessarily reflect", r"\bopinions? expressed\b|\bdo not necessarily reflect\b"),
    ("@", r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    ("credit|courtesy|source:", r"\b(?:photo|image|video)s? (?:credit|courtesy)\b|\bsource: cnn\b"),
)
# Phrases that only chrome uses: one is enough, whatever the paragraph's length (4 each).
_DECISIVE = _rules(
    ("all rights reserved", r"\ball rights reserved\b"),
    (
        "relevant is this ad|video player|ad was|ad feedback",
        r"\bhow relevant is this ad\b|\bvideo player was slow\b|\bad (?:was repetitive|feedback)\b",
    ),
    (
        "to load|ad froze|ad did not",
        r"\bcontent (?:failed|was slow) to load\b|\bad (?:froze|did not (?:load|start))\b",
    ),
    (
        "watched|must watch|replay more|caption",
        r"\b(?:just watched|must watch|replay more videos|hide caption|show caption)\b",
    ),
    (
        "be the first|no comments",
        r"\bbe the first to (?:comment|respond|share|review)\b|\bno comments (?:yet|for)\b",
    ),
    ("sign in|sign on", r"\bsign (?:in|on) to (?:comment|reply|continue|read)\b"),
    ("about the", r"\babout the (?:author|creator|writer|contributors?|reporter)\b"),
    ("min read|mins read|minute read|minutes read", r"\b(?:min|minute)s? read\b"),
    (
        "been updated|been corrected|earlier version",
        r"\b(?:this|the) (?:story|article|report)(?: and headline)? (?:has|have|was) been "
        r"(?:updated|corrected)\b|\ban earlier version of this (?:story|article)\b",
    ),
    ("version of this", r"\ba version of this (?:story|article) (?:first )?appeared\b"),
    ("contributed to this", r"\bcontributed to this (?:report|story|article)\b"),
    (
        "journalism|content partner",
        r"\bsupport(?:ing)? (?:local|independent|our|quality) journalism\b|\bcontent partner\b",
    ),
    ("sign up|click here", r"\bsign up (?:here|now|today)\b|\(click here(?: to \w+)?\)"),
    ("sign up for", r"\bsign up for (?:our|texts?|email|alerts|free)\b"),
    # A link's label: "Related: ...", and one glued to the link text by scraping ("More:Headline").
    (":", r"^(?:related|more|read more|see also|also read|recommended|watch|listen)\s?:"),
    (":", r"^[^\s:\d][^:]{0,30}:[A-Z‘'“\"]"),
)
# Words of a site's interface. They count in a paragraph that is mostly made of them
# ("Comments", "Add your insights", "Miscellaneous links"), and a little in longer ones.


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_UI_WORDS = _word_set(
    """share comment comments subscribe subscriber subscribers subscription newsletter
    newsletters login signin register menu search home logo links insights trending
    advertisement advertisements ads ad sponsored promoted cookies explore contact support
    feedback podcast podcasts video videos photos gallery twitter facebook instagram linkedin
    whatsapp tiktok youtube pinterest rss email print tags topics categories sections archive
    archives careers help faq account profile settings notifications replay loading related
    recommended more next previous prev back top social media miscellaneous"""
)
_STOP_WORDS = _word_set(
    "the a an of to in on for and or our your us my this with at by from is are be"
)
_AGENCY = (
    r"(?:Getty Images|AP Photo|AP|AFP|Reuters|EPA|EPA-EFE|Shutterstock|Alamy|Bloomberg|"
    r"NurPhoto|Zuma Press|ZUMA Wire|Sipa USA|Everett Collection|Associated Press)"
)
_SLASH_CREDIT = re.compile(r"[A-Za-z0-9][\w.'’-]*(?:/[A-Z][\w.'’&-]*(?: [A-Z][\w.'’&-]*){0,3})+$")
_AGENCY_TAIL = re.compile(rf"\b{_AGENCY}$", re.IGNORECASE)
_AGENCY_ONLY = re.compile(rf"^(?:The )?{_AGENCY}$")
_CAPTION_LEAD = re.compile(r"^(?:courtesy|credit|photo|image|photograph|illustration)\b", re.I)
_LAST_SENTENCE = re.compile(r"[.!?][”\"’')]*\s+(?=\S)")
_DATELINE = re.compile(r"^\(?[A-Z][\w.,'’ ()-]{0,60}?\s?(?:—|–|--)$|^\([A-Z]{2,10}\)$")
_SIGNOFF = re.compile(r"^(?:—|–|--?)\s?[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}$")
_TERMINAL = re.compile(r"[.!?…][”\"’')\]]*$")
_SENTENCE_END = re.compile(r"[.!?…][”\"’')\]]*(?:\s|$)")
_BULLET = re.compile(r"^(?:[•·▪►▶→»*+|-]|\d{1,2}[.)])\s")
_SEPARATOR_SYMBOLS = re.compile(r"[•·▪►▶|🔹🔸◆◇■□●○★☆✓✔]")
_WORD = re.compile(r"[\w’'-]+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[”\"’')\]]*\s+")
_SHORT_LABEL_WORDS = 12

_BYLINE = re.compile(r"^(?:by|written by|words by)\s+(?P<rest>[A-Z].*)$", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"^(?:[A-Z][\w’'.-]*|[A-Z]\.|(?:de|van|von|der|da|del|la|le|bin|al)-?)$")
_NAME_JOINERS = {"and", "&", ","}
_DATE_LINE = re.compile(r"^(?:published|updated|posted|last updated)\b", re.IGNORECASE)
_RELATIVE_TIME = re.compile(
    r"\b(?:\d+|an?|about|one|two|few) (?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?)"
    r" ago\b|\bjust now\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
_WEEKDAYS = _word_set("monday tuesday wednesday thursday friday saturday sunday")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        1,
    )
    for name in names
}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_DATE_PATTERNS = (
    re.compile(r"\b(?P<year>\d{4})-(?P<m>\d{2})-(?P<day>\d{2})\b"),
    re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(?P<year>\d{{4}})\b"),
)


def words_of(text: str) -> list[str]:
    """The words of a paragraph, punctuation stripped, for counting."""
    return _WORD.findall(text)


@lru_cache(maxsize=8192)
def strong_hits(text: str) -> int:
    """How many chrome phrases a paragraph holds, a decisive one counting double."""
    lowered = text.lower()
    strong = sum(1 for rule in _STRONG if rule.found_in(text, lowered))
    return strong + 2 * decisive_hits(text, lowered)


def decisive_hits(text: str, lowered: str) -> int:
    """How many phrases only chrome uses ("All rights reserved") a paragraph holds."""
    return sum(1 for rule in _DECISIVE if rule.found_in(text, lowered))


def boilerplate_score(text: str, words: list[str]) -> float:
    """Chrome vocabulary: 2 per strong phrase, 4 per decisive one, 0.5 per interface word."""
    score = 2.0 * strong_hits(text)
    if len(words) <= _SHORT_LABEL_WORDS:
        # Interface words are common English ("share", "home", "next"): they tip a short
        # label over, never a sentence.
        weak = sum(1 for word in words if word.lower() in _UI_WORDS)
        score += min(0.5 * weak, 1.0)
    return score


def is_boilerplate(text: str, words: list[str]) -> bool:
    """Enough chrome vocabulary for the paragraph's length: long prose may mention a newsletter.

    A paragraph whose chrome is one closing call to action ("... Read more here.") after
    sentences of news is kept: the news matters more than the link's leftovers.
    """
    if len(words) <= 80 and decisive_hits(text, text.lower()):
        return True
    if boilerplate_score(text, words) < 1.5 + len(words) / 25:
        return False
    plain = [part for part in _SENTENCE_SPLIT.split(text) if strong_hits(part) == 0]
    plain_words = sum(len(part.split()) for part in plain)
    return not (plain_words >= 15 and sum(map(len, plain)) >= 0.6 * len(text))


def is_interface_label(words: list[str]) -> bool:
    """A short label made mostly of interface words: "Comments", "Reader insights"."""
    content = [word.lower() for word in words if word.lower() not in _STOP_WORDS]
    if not content or len(words) > 4:
        return False
    return sum(1 for word in content if word in _UI_WORDS) * 2 >= len(content)


def is_caption(text: str) -> bool:
    """A photo caption: ends in a credit ("John Moore/Getty Images", "Courtesy Jane Doe")."""
    if ends_sentence(text):
        return False
    if "hide caption" in text.lower():
        return True
    parts = _LAST_SENTENCE.split(text)
    tail = parts[-1]
    if len(tail.split()) <= 8 and len(parts) > 1 and _CAPTION_LEAD.match(tail):
        return True
    if _SLASH_CREDIT.search(text) or _AGENCY_ONLY.match(text):
        return True
    return len(parts) > 1 and bool(_AGENCY_TAIL.search(text))


_EMBED = re.compile(
    r"^(?:video ad feedback|just watched|photos?:|video:|watch:|listen:|gallery:)|hide caption",
    re.IGNORECASE,
)


def is_media(text: str) -> bool:
    """A caption or a video player's leftovers: chrome that sits inside the body."""
    return bool(_EMBED.search(text)) or is_caption(text)


def is_dateline(text: str, words: list[str]) -> bool:
    """A bare dateline or sign-off line: "Washington CNN —", "(CNN)", "– AJ"."""
    if len(words) > 10:
        return False
    return bool(_DATELINE.match(text) or _SIGNOFF.match(text))


def is_tag(text: str, words: list[str]) -> bool:
    """A lower-case topic tag on its own line ("politics"): never a paragraph of prose."""
    return (
        0 < len(words) <= 3
        and all(word.isalpha() for word in words)
        and text == text.lower()
        and not _TERMINAL.search(text)
    )


def is_tag_soup(text: str, words: list[str]) -> bool:
    """Many words and no sentence end anywhere: a tag line, a menu, a keyword list."""
    if _SENTENCE_END.search(text):
        return False
    return len(words) >= 20 and len(_SEPARATOR_SYMBOLS.findall(text)) >= 2


def is_bullet(text: str) -> bool:
    """Starts like a list item."""
    return bool(_BULLET.match(text))


def ends_sentence(text: str) -> bool:
    """Ends with sentence punctuation, closing quotes allowed."""
    return bool(_TERMINAL.search(text))


def has_sentence_end(text: str) -> bool:
    """Holds at least one sentence end somewhere."""
    return bool(_SENTENCE_END.search(text))


def parse_byline(text: str) -> str | None:
    """Author names of a byline: "By Fiaz Ahmed Published about 23 hours ago" → "Fiaz Ahmed"."""
    match = _BYLINE.match(text)
    # "By Monday, officials said ..." is a sentence, not a byline.
    if (
        not match
        or len(text.split()) > 25
        or (ends_sentence(text) and not _RELATIVE_TIME.search(text))
    ):
        return None
    names: list[str] = []
    current: list[str] = []
    for raw in match.group("rest").replace(",", " , ").split():
        token = raw.strip()
        if token.lower() in _NAME_JOINERS:
            if current:
                names.append(" ".join(current))
            current = []
            continue
        calendar = token.lower().strip(".") in _MONTHS or token.lower() in _WEEKDAYS
        if not _NAME_TOKEN.match(token) or calendar or len(current) >= 4:
            break
        if token in {"Published", "Updated", "Posted", "On", "Staff"}:
            break
        current.append(token)
    if current:
        names.append(" ".join(current))
    names = [name for name in names if any(ch.islower() for ch in name)]
    return ", ".join(names) or None


def is_date_line(text: str, words: list[str]) -> bool:
    """A "Published ..." / "Updated ..." line that holds a date or a time."""
    if len(words) > 14 or not _DATE_LINE.match(text):
        return False
    return bool(find_date(text) or _RELATIVE_TIME.search(text) or _CLOCK.search(text))


def find_date(text: str) -> str | None:
    """The first explicit calendar date in `text`, as an ISO string."""
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            iso = _iso_date(match.groupdict())
            if iso:
                return iso
    return None


def _iso_date(parts: dict[str, str | None]) -> str | None:
    month_name = parts.get("month")
    month = _MONTHS.get(month_name.lower()) if month_name else None
    if month is None and parts.get("m"):
        month = int(parts["m"] or 0)
    try:
        return date(int(parts["year"] or 0), month or 0, int(parts["day"] or 0)).isoformat()
    except (TypeError, ValueError):
        return None
