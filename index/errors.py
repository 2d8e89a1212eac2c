"""Domain errors raised by the indexing side; front ends turn them into one-line messages."""

from __future__ import annotations


class DossierError(Exception):
    """Base of every error whose message is fit to show a user as it is."""


class UnreadableArticle(DossierError):
    """A file (or one line of an articles JSONL) that cannot become an article.

    The message is the one-line reason shown to the user, e.g. "encrypted PDF".
    """

    @property
    def reason(self) -> str:
        """The one-line reason, as shown in `Skipped.reason`."""
        return str(self)


class IndexNotBuilt(DossierError):
    """There is nothing indexed yet to answer from."""


class StoreUnavailable(DossierError):
    """The Chroma store (usually a server) cannot be reached right now."""


class EmbeddingModelMismatch(DossierError):
    """The index was built with another embedding model than the one configured."""
