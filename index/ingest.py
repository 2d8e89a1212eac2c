"""Bring the store in line with a set of files: add new articles, replace changed ones, prune."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import CONTEXT_TOKENS, chunk_article, embedding_texts, sentence_spans_in
from index.embeddings import SentenceEmbeddings
from index.loaders import iter_articles
from index.models import Article, Chunk, Skipped, Unchanged
from index.store import ArticleRecord, PassageStore, StoreWrite

# Embedding several articles' passages in one call keeps the model's batches full, and a
# large pool lets batches be made of passages of one length (little padding).
_EMBED_BATCH_PASSAGES = 2048

Progress = Callable[[Article | Skipped | Unchanged], None]


@dataclass
class IngestReport:
    """What an ingest did; `to_json` is the `dossier ingest --json` contract."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    passages: int = 0
    seconds: float = 0.0
    embedded: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "passages": self.passages,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Pending:
    article: Article
    chunks: list[Chunk]
    is_new: bool
    # The same article indexed under an earlier id (a stem id before ids were paths, or a
    # renamed file): dropped in the same write, its vectors reused when nothing else changed.
    moved_from: ArticleRecord | None = None


class Ingestor:
    """Turns articles into passages and vectors and writes them to a PassageStore."""

    def __init__(
        self,
        store: PassageStore,
        embedder: SentenceEmbeddings,
        *,
        max_passage_tokens: int = 200,
        context_in_embedding: bool = True,
        sentence_vectors: bool = False,
        max_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.max_passage_tokens = max_passage_tokens
        self.context_in_embedding = context_in_embedding
        # Keep each passage's sentence vectors (late chunking) and its article's headings'
        # vectors, for answers that read them (answer.sentence_vectors = "late").
        self.sentence_vectors = sentence_vectors
        self.max_bytes = max_bytes

    def chunk(self, article: Article) -> list[Chunk]:
        window = self.embedder.max_tokens - 2  # [CLS] and [SEP]
        if self.context_in_embedding:
            window -= CONTEXT_TOKENS
        return chunk_article(
            article,
            self.embedder.count_tokens,
            max_tokens=self.max_passage_tokens,
            window=window,
        )

    def embedding_inputs(self, passages: Sequence[tuple[Article, Chunk]]) -> list[str]:
        if not self.context_in_embedding:
            return [chunk.text for _, chunk in passages]
        return embedding_texts(passages, self.embedder.count_tokens)

    def run(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        corpus_root: Path | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        records = self.store.records()
        owner_of_text = {r.text_hash: r for r in records.values()}
        seen_ids: set[str] = set()
        seen_paths: set[str] = set()
        pending: list[_Pending] = []
        known = {r.raw_hash: r.id for r in records.values() if r.raw_hash}
        stale_raw_hashes: dict[str, str] = {}
        items = iter_articles(list(paths), corpus_root=corpus_root, max_bytes=self.max_bytes,
                              known=known)
        with self.store.write() as write:
            for item in items:
                if isinstance(item, Skipped):
                    report.skipped.append(item)
                elif isinstance(item, Unchanged):  # same bytes as indexed: not even read
                    seen_ids.add(item.id)
                    if item.path:
                        seen_paths.add(item.path)
                    report.unchanged += 1
                else:
                    skip = self._consider(item, records, owner_of_text, seen_ids, report,
                                          pending)
                    if skip is not None:
                        report.skipped.append(skip)
                    if item.path:
                        seen_paths.add(item.path)
                    existing = records.get(item.id)
                    if (existing is not None and item.raw_hash != existing.raw_hash
                            and existing.content_hash == item.content_hash):
                        stale_raw_hashes[item.id] = item.raw_hash
                    if sum(len(p.chunks) for p in pending) >= _EMBED_BATCH_PASSAGES:
                        self._embed_and_write(pending, report, write)
                if progress is not None:
                    progress(item)
            self._embed_and_write(pending, report, write)
            # Every passage is embedded: the model's batch buffers (hundreds of MB after
            # pools of 2,048) need not be held while the write rebuilds its indexes.
            self.embedder.release_batch_buffers()
            if prune:
                for record in _gone(records.values(), paths, seen_ids, seen_paths):
                    write.remove_article(record.id)
                    report.removed += 1
        if stale_raw_hashes:
            # Outside the write: nothing the keyword index or a search reads has changed.
            self.store.set_raw_hashes(stale_raw_hashes)
        report.passages = self.store.count()
        report.seconds = time.perf_counter() - started
        return report

    def _consider(
        self,
        article: Article,
        records: dict[str, ArticleRecord],
        owner_of_text: dict[str, ArticleRecord],
        seen_ids: set[str],
        report: IngestReport,
        pending: list[_Pending],
    ) -> Skipped | None:
        """Queue an article for embedding, count it unchanged, or say why it is skipped."""
        where = article.path or article.id
        if article.id in seen_ids:
            return Skipped(where, f"duplicate article id {article.id!r} in this ingest")
        existing = records.get(article.id)
        if existing is not None and _other_live_source(existing.path, article.path):
            return Skipped(where, f"article id {article.id!r} belongs to {existing.path}: "
                                  "not replaced")
        owner = owner_of_text.get(article.text_hash)
        moved_from = None
        if owner is not None and owner.id != article.id:
            if existing is not None or owner.id in seen_ids or _other_live_source(
                    owner.path, article.path):
                return Skipped(where, f"same text as {owner.path or owner.id}: indexed once")
            moved_from = owner
        seen_ids.add(article.id)
        owner_of_text[article.text_hash] = _record_of(article)
        if existing is not None and existing.content_hash == article.content_hash:
            report.unchanged += 1
            return None
        chunks = self.chunk(article)
        if not chunks:
            return Skipped(where, "no text left after removing page chrome")
        pending.append(_Pending(article, chunks, is_new=existing is None and moved_from is None,
                                moved_from=moved_from))
        return None

    def _embed_and_write(self, pending: list[_Pending], report: IngestReport,
                         write: StoreWrite) -> None:
        """Embed the queued articles' passages in one pool, write them, empty the queue."""
        if not pending:
            return
        reused = self._reusable_vectors(pending)
        fresh = [p for p in pending if id(p) not in reused]
        chunks = [c for p in fresh for c in p.chunks]
        texts = self.embedding_inputs([(p.article, c) for p in fresh for c in p.chunks])
        sentence_vectors: dict[str, Any] = {}
        heading_vectors: dict[str, Any] = {}
        if texts:
            self.embedder.prepare(texts)
            if self.sentence_vectors:
                vectors, by_passage = self.embedder.encode_with_spans(
                    texts, [sentence_spans_in(c, t) for c, t in zip(chunks, texts, strict=True)]
                )
            else:
                vectors, by_passage = self.embedder.encode(texts), None
            if by_passage is not None:
                sentence_vectors = {c.id: m for c, m in zip(chunks, by_passage, strict=True)}
                heading_vectors = self._heading_vectors([p.article for p in fresh])
            report.embedded += len(texts)
        at = 0
        items = []
        for item in pending:
            own = reused.get(id(item))
            if own is None:
                own = vectors[at : at + len(item.chunks)]
                at += len(item.chunks)
            items.append((item.article, item.chunks, own))
        if self.sentence_vectors:
            sentence_vectors.update(self._moved_sentence_vectors([p for p in pending
                                                                  if id(p) in reused]))
        write.remove_articles([p.moved_from.id for p in pending if p.moved_from is not None])
        write.replace_articles(items, sentence_vectors, heading_vectors)
        report.added += sum(p.is_new for p in pending)
        report.updated += sum(not p.is_new for p in pending)
        pending.clear()

    def _heading_vectors(self, articles: Sequence[Article]) -> dict[str, Any]:
        """Each article's section headings embedded alone (what an answer compares with the
        question), by article id: one small model call per pool, none per question."""
        with_headings = [a for a in articles if a.headings]
        texts = [a.text[s:e] for a in with_headings for s, e in a.headings]
        if not texts:
            return {}
        vectors = self.embedder.encode(texts)
        found, at = {}, 0
        for article in with_headings:
            found[article.id] = vectors[at : at + len(article.headings)]
            at += len(article.headings)
        return found

    def _moved_sentence_vectors(self, moved: list[_Pending]) -> dict[str, Any]:
        """A moved article's stored sentence vectors, by its passages' new ids."""
        if not moved:
            return {}
        new_id = {
            f"{item.moved_from.id}:{c.id.rsplit(':', 1)[1]}": c.id
            for item in moved if item.moved_from is not None for c in item.chunks
        }
        sentence_file = self.store.sentence_file
        if sentence_file is None:
            return {}
        return {new_id[old]: m for old, m in sentence_file.of_passages(list(new_id)).items()}

    def _reusable_vectors(self, pending: list[_Pending]) -> dict[int, Any]:
        """By id() of the queued item: the stored vectors of a moved article's passages,
        when the embedding input of every one is unchanged (else it is embedded again)."""
        moved = [p for p in pending if p.moved_from is not None
                 and p.moved_from.content_hash == p.article.content_hash]
        stored = self.store.passage_vectors([p.moved_from.id for p in moved if p.moved_from])
        reused: dict[int, Any] = {}
        for item in moved:
            assert item.moved_from is not None
            own = stored[item.moved_from.id]
            found = [own.get((c.start, c.end)) for c in item.chunks]
            if all(vector is not None for vector in found):
                reused[id(item)] = np.asarray(found, dtype=np.float32)
        return reused


def _record_of(article: Article) -> ArticleRecord:
    return ArticleRecord(
        id=article.id,
        title=article.title,
        author=article.author,
        published=article.published,
        url=article.url,
        path=article.path,
        content_hash=article.content_hash,
        text_hash=article.text_hash,
        passages=0,
    )


def _other_live_source(indexed: str | None, incoming: str | None) -> bool:
    """Whether an indexed article came from another file that still exists (not the same
    file under another spelling of its path, nor a file since removed or renamed)."""
    if not indexed or not incoming:
        return False
    old, new = Path(indexed), Path(incoming)
    if old.resolve() == new.resolve():
        return False
    return old.exists()


def _gone(
    records: Iterable[ArticleRecord],
    roots: Sequence[Path],
    seen_ids: set[str],
    seen_paths: set[str],
) -> list[ArticleRecord]:
    """Indexed articles under the ingested paths whose file, or JSONL line, is gone."""
    resolved_roots = [root.resolve() for root in roots]
    gone = []
    for record in records:
        if record.id in seen_ids or not record.path:
            continue
        path = Path(record.path).resolve()
        if not any(path == root or root in path.parents for root in resolved_roots):
            continue  # outside what this ingest looked at: not ours to judge
        if not path.exists() or record.path in seen_paths:
            gone.append(record)
    return gone
