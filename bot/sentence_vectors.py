"""The vectors an answer compares with the question: its candidate sentences' and its own."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from index.chunking import embedding_texts, sentence_spans_in
from index.embeddings import SentenceEmbeddings
from index.models import Article, Chunk
from index.sentence_vectors import SentenceKey
from index.store import PassageStore, StoredPassage

Source = Literal["late", "separate"]
# Passages whose late-chunked vectors were computed at question time, kept for the next
# questions (an index without stored vectors; popular passages come back).
_COMPUTED_PASSAGES = 2_000


class SentenceVectors:
    """Unit vectors of a passage's sentences, whatever their source.

    "late" (late chunking, Günther et al. 2024): each sentence's tokens pooled from its
    passage's own forward pass, so read in the passage's context; stored at ingest
    (index/sentence_vectors.py), or computed here for a passage stored without them (the
    same vectors: one passage, one model call). "separate": each sentence embedded alone
    at question time, as answers did before; also what torch gives, which cannot late-chunk.
    """

    def __init__(self, store: PassageStore, embedder: SentenceEmbeddings,
                 source: Source = "late", *, context_in_embedding: bool = True) -> None:
        self.store = store
        self.embedder = embedder
        self.source = source
        self.context_in_embedding = context_in_embedding
        self._computed: OrderedDict[str, Any] = OrderedDict()
        # The bot answers several chats at once: the cache is shared by their threads.
        self._computed_lock = threading.Lock()

    def forget_cached(self) -> None:
        """Forget every vector computed so far (benchmarks of first-time questions)."""
        self.embedder.forget_cached()
        with self._computed_lock:
            self._computed.clear()

    def texts(self, texts: Sequence[str]) -> Any:
        """Texts embedded now (a question, section headings), recent ones reused."""
        return self.embedder.encode_cached(texts)

    def headings(self, named: Sequence[tuple[str, str]], articles: Mapping[str, Article]
                 ) -> Any:
        """One row per (article id, section heading): embedded alone at ingest, else now.
        An ingest keeps them only for "late" answers, so only those look them up."""
        stored = (self.store.heading_vectors(list(dict.fromkeys(a for a, _ in named)))
                  if self.source == "late" else {})
        rows: list[Any] = []
        for article_id, heading in named:
            article = articles.get(article_id)
            spans = [(s, e) for s, e in (article.headings if article else ())
                     if article is not None and article.text[s:e] == heading]
            rows.append(next((stored[(article_id, s, e)] for s, e in spans
                              if (article_id, s, e) in stored), None))
        alone = [i for i, row in enumerate(rows) if row is None]
        if alone:
            for i, vector in zip(alone, self.texts([named[i][1] for i in alone]), strict=True):
                rows[i] = vector
        return np.stack(rows).astype(np.float32, copy=False) if rows else rows

    def of(self, sentences: Sequence[tuple[StoredPassage | None, str, int, int]],
           articles: Mapping[str, Article]) -> Any:
        """One row per (passage it was read in or None, article id, start, end)."""
        if not sentences:
            return np.zeros((0, 0), dtype=np.float32)
        late = self._late(sentences, articles) if self.source == "late" else {}
        rows: list[Any] = [late.get((a, s, e)) for _, a, s, e in sentences]
        alone = [i for i, row in enumerate(rows) if row is None]
        if alone:
            embedded = self.texts([articles[sentences[i][1]].text[
                sentences[i][2] : sentences[i][3]] for i in alone])
            for i, vector in zip(alone, embedded, strict=True):
                rows[i] = vector
        return np.stack(rows).astype(np.float32, copy=False)

    def _late(self, sentences: Sequence[tuple[StoredPassage | None, str, int, int]],
              articles: Mapping[str, Article]) -> dict[SentenceKey, Any]:
        """Late-chunked vectors by (article id, start, end): kept at ingest, else computed
        now from the passages they were read in (none where the model cannot late-chunk,
        or for a sentence read outside a retrieved passage)."""
        # The retrieved passages' rows, and whole articles only for sentences read
        # outside them (the best article's other sentences): fewer rows to decode.
        passages = {p.id: p for p, _, _, _ in sentences if p is not None}
        found: dict[SentenceKey, Any] = {}
        for pid, matrix in self.store.passage_sentence_vectors(list(passages)).items():
            found.update(_keyed(passages[pid], matrix))
        outside = [a for p, a, s, e in sentences if p is None and (a, s, e) not in found]
        if outside:
            found.update(self.store.sentence_vectors(list(dict.fromkeys(outside))))
        missing: dict[str, StoredPassage] = {}
        for passage, article_id, start, end in sentences:
            if (article_id, start, end) in found or passage is None:
                continue
            with self._computed_lock:
                computed = self._computed.get(passage.id)
                if computed is not None:
                    self._computed.move_to_end(passage.id)
            if computed is not None:
                found.update(_keyed(passage, computed))
            elif passage.article_id in articles and passage.sentences:
                missing[passage.id] = passage
        if missing:
            for passage, matrix in self._compute(list(missing.values()), articles):
                found.update(_keyed(passage, matrix))
        return found

    def _compute(self, passages: Sequence[StoredPassage], articles: Mapping[str, Article]
                 ) -> list[tuple[StoredPassage, Any]]:
        chunks = [Chunk(p.article_id, 0, p.start, p.end,
                        articles[p.article_id].text[p.start : p.end], p.heading, p.sentences)
                  for p in passages]
        pairs = [(articles[c.article_id], c) for c in chunks]
        texts = (embedding_texts(pairs, self.embedder.count_tokens)
                 if self.context_in_embedding else [c.text for c in chunks])
        _, matrices = self.embedder.encode_with_spans(
            texts, [sentence_spans_in(c, t) for c, t in zip(chunks, texts, strict=True)]
        )
        if matrices is None:
            return []
        computed = list(zip(passages, matrices, strict=True))
        with self._computed_lock:
            self._computed.update((p.id, m) for p, m in computed)
            while len(self._computed) > _COMPUTED_PASSAGES:
                self._computed.popitem(last=False)
        return computed


def _keyed(passage: StoredPassage, matrix: Any) -> dict[SentenceKey, Any]:
    return {(passage.article_id, start, end): vector
            for (start, end), vector in zip(passage.sentences, matrix, strict=False)}
