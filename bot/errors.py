"""Domain errors the core raises; front ends turn them into one line for the user."""

from __future__ import annotations

from index.errors import (
    DossierError,
    EmbeddingModelMismatch,
    IndexNotBuilt,
    StoreUnavailable,
    UnreadableArticle,
)

__all__ = [
    "BadQuestions",
    "DossierError",
    "EmbeddingModelMismatch",
    "IndexNotBuilt",
    "LLMUnavailable",
    "SettingsError",
    "StoreUnavailable",
    "UnreadableArticle",
]


class SettingsError(DossierError):
    """A setting is missing, unknown or has a bad value."""


class LLMUnavailable(DossierError):
    """The configured LLM failed, timed out or answered nothing usable."""


class BadQuestions(DossierError):
    """A questions file for `dossier eval` is missing or has a line that is not a question."""
