"""Which language a question is written in (py3langid: offline, no model download)."""

from __future__ import annotations

import functools
import threading
from typing import Any

# Languages told apart; English plus the most spoken ones whose users might write to us.
LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "uk", "zh", "ja", "ko", "ar", "tr",
    "hi", "sv", "id", "vi", "ro", "cs", "el", "he", "da", "fi", "no", "hu",
)
# Below this probability, or below this many words, a question is taken for English: short
# English questions ("Who is Bob Saget?") look like several languages at once.
MIN_PROBABILITY = 0.9
MIN_WORDS = 3
_lock = threading.Lock()


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def load() -> None:
    """Load the identifier now (a server does it before its first question, not during it)."""
    with _lock:
        _identifier()


def language_of(text: str) -> str:
    """The ISO 639-1 code of the language `text` is written in; "en" when unsure."""
    if len(text.split()) < MIN_WORDS:
        return "en"
    with _lock:  # the identifier is loaded once (about a second); its calls are cheap
        code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else "en"


def is_english(text: str) -> bool:
    return language_of(text) == "en"
