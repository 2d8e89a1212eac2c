"""Articles' full texts, compressed, in a Chroma collection of their own."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

# The text is a metadata string, not a document: Chroma keeps every document three times
# more (an index of metadata strings, a copy in its full-text index, and that index's
# trigrams), about five times the text, for a full-text search Dossier never runs. A
# metadata string is kept twice (its row and the index of metadata strings), so the text
# goes in compressed: zlib then base64 (metadata holds no bytes), about half the text.
# base64, not the denser base85: Python decodes base85 in Python, 0.8 ms an article, a
# fifth of a first-time retrieve (BENCHMARKS.md); base64 in C.
_TEXT_KEY = "text_zlib_b64"
# What indexes written before kept (base85): still read.
_BASE85_TEXT_KEY = "text_zlib_b85"
# The registry (`records()`) reads every article's metadata: the texts stay out of it,
# in a collection of their own, read only for the articles an answer quotes.
TEXTS_SUFFIX = "-texts"


def encode_text(text: str) -> str:
    """`text` as a short ASCII string (zlib, then base64)."""
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def decode_text(encoded: str, *, base85: bool = False) -> str:
    """The text `encode_text` was given (`base85`: as an earlier index encoded it)."""
    packed = base64.b85decode(encoded) if base85 else base64.b64decode(encoded)
    return zlib.decompress(packed).decode("utf-8")


def _text_of(meta: Any) -> str | None:
    if not meta:
        return None
    if _TEXT_KEY in meta:
        return decode_text(str(meta[_TEXT_KEY]))
    if _BASE85_TEXT_KEY in meta:
        return decode_text(str(meta[_BASE85_TEXT_KEY]), base85=True)
    return None


# For collections looked up by id only (their vectors are one number each). Chroma keeps
# each write in its log (metadata included) until the collection's vector index is next
# saved, every `sync_threshold` entries (1,000 by default). Saved every 100, the log holds
# about 100 entries, not 1,000, and saving vectors of one number costs nothing.
BY_ID_ONLY = {"hnsw": {"sync_threshold": 100, "batch_size": 100}}


class ArticleTexts:
    """One entry per article: its id, a placeholder vector, its text compressed."""

    def __init__(self, client: Any, name: str) -> None:
        self.collection = client.get_or_create_collection(
            name + TEXTS_SUFFIX, configuration=BY_ID_ONLY, embedding_function=None
        )

    def put(self, texts: Sequence[tuple[str, str]], batch: int) -> None:
        """Store (article id, text) pairs, replacing earlier texts of those ids."""
        for at in range(0, len(texts), batch):
            part = texts[at : at + batch]
            self.collection.upsert(
                ids=[article_id for article_id, _ in part],
                embeddings=[[1.0]] * len(part),  # looked up by id, never by vector
                metadatas=[{_TEXT_KEY: encode_text(text)} for _, text in part],
            )

    def get(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The texts of those ids that have one (an index built before kept them as the
        articles' documents instead)."""
        ids = list(dict.fromkeys(article_ids))
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["metadatas"])
        texts = {
            article_id: _text_of(meta)
            for article_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
        }
        return {article_id: text for article_id, text in texts.items() if text is not None}

    def remove(self, article_ids: Sequence[str]) -> None:
        if article_ids:
            self.collection.delete(ids=list(article_ids))
