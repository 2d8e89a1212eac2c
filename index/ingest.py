"""Bring the store in line with a set of files: add new articles, replace changed ones, prune."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.chunking import chunk_article, embedding_text
from index.embeddings import SentenceEmbeddings
from index.loaders import iter_articles
from index.models import Article, Chunk, Skipped, Unchanged
from index.store import ArticleRecord, PassageStore, StoreWrite

# Embedding several articles' passages in one call keeps the model's batches full, and a
# large pool lets batches be made of passages of one length (little padding).
_EMBED_BATCH_PASSAGES = 2048
# Room left in the model window for the title and heading given as context.
_CONTEXT_TOKENS = 40

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

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

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


class Ingestor:
    """Turns articles into passages and vectors and writes them to a PassageStore."""

    def __init__(
        self,
        store: PassageStore,
        embedder: SentenceEmbeddings,
        *,
        max_passage_tokens: int = 200,
        context_in_embedding: bool = True,
        max_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.max_passage_tokens = max_passage_tokens
        self.context_in_embedding = context_in_embedding
        self.max_bytes = max_bytes

    def chunk(self, article: Article) -> list[Chunk]:
        window = self.embedder.max_tokens - 2  # [CLS] and [SEP]
        if self.context_in_embedding:
            window -= _CONTEXT_TOKENS
        return chunk_article(
            article,
            self.embedder.count_tokens,
            max_tokens=self.max_passage_tokens,
            window=window,
        )

    def embedding_input(self, article: Article, chunk: Chunk) -> str:
        if not self.context_in_embedding:
            return chunk.text
        return embedding_text(article, chunk, max_context_words=_CONTEXT_TOKENS // 2)

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
        owner = owner_of_text.get(article.text_hash)
        if owner is not None and owner.id != article.id:
            return Skipped(where, f"same text as {owner.path or owner.id}: indexed once")
        seen_ids.add(article.id)
        owner_of_text[article.text_hash] = _record_of(article)
        existing = records.get(article.id)
        if existing is not None and existing.content_hash == article.content_hash:
            report.unchanged += 1
            return None
        chunks = self.chunk(article)
        if not chunks:
            return Skipped(where, "no text left after removing page chrome")
        pending.append(_Pending(article, chunks, is_new=existing is None))
        return None

    def _embed_and_write(self, pending: list[_Pending], report: IngestReport,
                         write: StoreWrite) -> None:
        """Embed the queued articles' passages in one pool, write them, empty the queue."""
        if not pending:
            return
        texts = [self.embedding_input(p.article, c) for p in pending for c in p.chunks]
        self.embedder.prepare(texts)
        vectors = self.embedder.encode(texts)
        report.embedded += len(texts)
        items = []
        at = 0
        for item in pending:
            items.append((item.article, item.chunks, vectors[at : at + len(item.chunks)]))
            at += len(item.chunks)
        write.replace_articles(items)
        report.added += sum(p.is_new for p in pending)
        report.updated += sum(not p.is_new for p in pending)
        pending.clear()


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
