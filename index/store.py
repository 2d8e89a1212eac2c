"""The Chroma store: passages with vectors, an article registry, and the keyword index beside it."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from chromadb.errors import NotFoundError

from index.article_cache import ArticleCache
from index.article_texts import BY_ID_ONLY, TEXTS_SUFFIX, ArticleTexts
from index.article_vectors import ArticleVectors, direction
from index.chroma_access import is_outage, make_client, reachable
from index.errors import EmbeddingModelMismatch, IndexNotBuilt, StoreUnavailable
from index.heap import returning_freed_memory
from index.keyword import ARTICLE_BM25, KeywordIndex, KeywordSearch, article_text
from index.models import Article, Chunk
from index.passage_table import PassageRow, PassageTable, PassageTableRows
from index.sentence_vectors import SentenceKey, SentenceVectorFile

log = logging.getLogger(__name__)

__all__ = [
    "ArticleRecord", "PassageHit", "PassageStore", "StoredPassage", "is_outage", "make_client",
]

SCHEMA_VERSION = 1
_ARTICLES_SUFFIX = "-articles"
_ARTICLE_VECTORS_SUFFIX = "-article-vectors"
_PASSAGE_TABLE_SUFFIX = "-passage-table"
# Up to this many articles without a row (indexed before rows were kept) have their
# passages read by article id; more, and every passage is read page by page.
_OLDER_ARTICLES_A_READ = 200
# Each article's row of the article vectors, as its vector in a collection of its own:
# rebuilding the article vectors reads one per article, not every passage's vector. As
# vectors, not metadata strings: Chroma keeps a metadata string twice, and a 2 KB one took
# 7.7 MB per 1,000 articles on disk, the vectors 1.9 MB.
_ARTICLE_ROWS_SUFFIX = "-article-vectors"
# Registry entries read at a time when all are read.
_REGISTRY_PAGE = 1000


class _GenerationTagged(Protocol):
    generation: str


# What the store derives from Chroma and keeps beside it: keyword indexes, article vectors.
_Derived = TypeVar("_Derived", bound=_GenerationTagged)


@dataclass(frozen=True)
class StoredPassage:
    """A passage as it comes back from the store, with its retrieval score."""

    id: str
    article_id: str
    start: int
    end: int
    text: str
    heading: str | None
    sentences: tuple[tuple[int, int], ...]
    score: float = 0.0


@dataclass(frozen=True)
class PassageHit:
    """A passage a search found, before its text is read: enough to fuse, date and rank it.

    `dated` says whether the passage's metadata carries its article's date (`published`,
    None when the article has none); passages indexed before it did are dated from the
    article registry instead.
    """

    id: str
    article_id: str
    published: str | None
    dated: bool
    score: float = 0.0


def _passage_metadata(chunk: Chunk, article: Article) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": chunk.article_id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "sentences": json.dumps(chunk.sentences),
        # Retrieval weighs passages by date: carried here, no registry read per question
        # ("" = no date: Chroma metadata has no null).
        "published": article.published or "",
    }
    if chunk.heading:
        meta["heading"] = chunk.heading
    return meta


def _article_metadata(article: Article, passages: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "title": article.title,
        "content_hash": article.content_hash,
        "text_hash": article.text_hash,
        "passages": passages,
        "headings": json.dumps(article.headings),
        "pages": json.dumps(article.pages),
    }
    for key in ("author", "published", "url", "path", "source", "raw_hash"):
        value = getattr(article, key)
        if value:
            meta[key] = value
    return meta


def _article_from(article_id: str, text: str, meta: dict[str, Any]) -> Article:
    return Article(
        id=article_id,
        title=str(meta.get("title", "")),
        text=text,
        author=meta.get("author"),
        published=meta.get("published"),
        url=meta.get("url"),
        path=meta.get("path"),
        source=meta.get("source"),
        headings=tuple(tuple(h) for h in json.loads(meta.get("headings", "[]"))),
        pages=tuple(json.loads(meta.get("pages", "[]"))),
    )


@dataclass(frozen=True)
class ArticleRecord:
    """What the registry knows of an indexed article without loading its text."""

    id: str
    title: str
    author: str | None
    published: str | None
    url: str | None
    path: str | None
    content_hash: str
    text_hash: str
    passages: int
    raw_hash: str = ""


class PassageStore:
    """Passages (vectors, offsets) and articles (full text, fields) in Chroma.

    A passage's text is not stored with it: it is cut from its article's text by its
    offsets. Stored, it cost more than the vectors: Chroma keeps a document three times
    over (its row, an index of metadata strings, a trigram full-text index we never query).
    For the same reason an article's text is no document either: it is kept compressed in
    a collection of its own (`ArticleTexts`); an index built before, which kept it as the
    registry entry's document, is still read.

    Chroma is the source of truth; the keyword index is derived from it and tagged with
    the store's `generation`, which every write changes before it starts (and again when it
    is done, see `finish_write`). A writer that dies half-way therefore leaves a generation
    no keyword index carries, and the next reader or writer rebuilds it: the two can never
    silently disagree.
    """

    def __init__(self, client: Any, name: str, model_name: str, keyword_dir: Path,
                 sentence_file: SentenceVectorFile | None = None) -> None:
        self.client = client
        # The passages' sentence vectors from ingest (late chunking), when kept.
        self.sentence_file = sentence_file
        self.name = name
        self.model_name = model_name
        self.keyword_dir = keyword_dir / name
        self.article_keyword_dir = keyword_dir / (name + _ARTICLES_SUFFIX)
        self.article_vectors_dir = keyword_dir / (name + _ARTICLE_VECTORS_SUFFIX)
        self.passage_table_dir = keyword_dir / (name + _PASSAGE_TABLE_SUFFIX)
        self._keyword: KeywordIndex | None = None
        self._passage_table: PassageTable | None = None
        # The generation one reader (a question) holds to, see `reading`.
        self._pinned: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"dossier-generation-{id(self)}", default=None)
        # Valid for one generation of the store: any write empties it.
        self._article_cache = ArticleCache()
        self._article_keyword: KeywordIndex | None = None
        self._article_vectors: ArticleVectors | None = None
        self._open_collections()

    def _open_collections(self) -> None:
        try:
            self.passages = self.client.get_or_create_collection(
                self.name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
            self.articles = self.client.get_or_create_collection(
                self.name + _ARTICLES_SUFFIX, configuration=BY_ID_ONLY,
                embedding_function=None,
            )
            self.texts = ArticleTexts(self.client, self.name)
            self.article_rows = self.client.get_or_create_collection(
                self.name + _ARTICLE_ROWS_SUFFIX,
                configuration={"hnsw": {"space": "cosine", **BY_ID_ONLY["hnsw"]}},
                embedding_function=None,
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach the Chroma store: {exc}") from exc

    # -- collection metadata ------------------------------------------------------------
    @property
    @reachable
    def metadata(self) -> dict[str, Any]:
        meta = self.client.get_collection(self.name, embedding_function=None).metadata
        return dict(meta or {})

    def _write_metadata(self, **changes: Any) -> None:
        # Chroma's modify() replaces the whole metadata mapping, so merge first.
        meta = {**self.metadata, **changes}
        self.passages.modify(metadata=meta)

    @reachable
    def check_model(self, dimension: int, *, rebuild: bool = False) -> None:
        """Refuse to mix vectors of two models; with rebuild, start the store afresh."""
        meta = self.metadata
        recorded = meta.get("embedding_model")
        if rebuild:
            self.reset()
            meta = {}
            recorded = None
        if recorded is None:
            self._write_metadata(
                embedding_model=self.model_name,
                embedding_dim=dimension,
                schema=SCHEMA_VERSION,
                generation=meta.get("generation", "empty"),
            )
            return
        if recorded != self.model_name or meta.get("embedding_dim") != dimension:
            raise EmbeddingModelMismatch(
                f"the index was built with {recorded} ({meta.get('embedding_dim')} dims), "
                f"not {self.model_name} ({dimension}): run `dossier ingest --rebuild`"
            )

    @reachable
    def reset(self) -> None:
        """Drop every passage and article (for --rebuild)."""
        for collection in (self.name, self.name + _ARTICLES_SUFFIX, self.name + TEXTS_SUFFIX,
                           self.name + _ARTICLE_ROWS_SUFFIX):
            try:
                self.client.delete_collection(collection)
            except NotFoundError:  # absent already: nothing to drop
                log.debug("collection %s was not there", collection)
        self._release_derived()
        if self.sentence_file is not None:
            self.sentence_file.reset()
        self._open_collections()

    @property
    def generation(self) -> str:
        """The store's generation: read from Chroma, or the one a `reading` holds to."""
        pinned = self._pinned.get()
        if pinned is not None:
            return pinned
        return str(self.metadata.get("generation", "empty"))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One reader's view (a question): the generation is read from Chroma once, on
        entry, and every derived index used inside is the one of that generation. Each
        search used to read it again (a Chroma call each, up to six a question); a write by
        another process now shows at the next question, as the keyword index's did at the
        next search. Nested views keep the outer one's generation."""
        if self._pinned.get() is not None:
            yield
            return
        token = self._pinned.set(self.generation)
        try:
            yield
        finally:
            self._pinned.reset(token)

    @reachable
    def begin_write(self) -> str:
        """Mark the store as changing: the keyword index is stale until `finish_write`."""
        generation = uuid.uuid4().hex
        self._write_metadata(generation=generation)
        self._release_derived()
        return generation

    def _release_derived(self) -> None:
        """Let go of the derived indexes held: stale from the moment a write begins, they
        were held through the embedding and through the rebuild of their successors, twice
        the derived memory at the peak of a long-lived process's ingest (BENCHMARKS.md)."""
        self._keyword = None
        self._article_keyword = None
        self._article_vectors = None
        self._passage_table = None

    @reachable
    def finish_write(self) -> KeywordIndex:
        """Seal the write with a new generation, then save the keyword index under it.

        A new generation, not the one `begin_write` set: a reader (another process, or
        another machine on the same Chroma server) that rebuilt its keyword index while
        this write was half-done tagged it with that generation, and must not keep it.
        Any index tagged with the sealed generation was built after every write was done.
        """
        generation = uuid.uuid4().hex
        self._write_metadata(generation=generation)
        self._keyword, self._passage_table = self._rebuild_keyword_and_table(generation)
        self._article_keyword = self._rebuild_article_keyword(generation)
        self._article_vectors = self._rebuild_article_vectors(generation)
        return self._keyword

    @contextlib.contextmanager
    def write(self) -> Iterator[StoreWrite]:
        """One write: begun on its first change, sealed on a clean exit.

        Sealed too when nothing changed but the keyword index is stale (an earlier writer
        died half-way). An exception leaves the write unsealed, so readers see a stale
        generation and rebuild their keyword index: the crash-safety protocol above.
        """
        session = StoreWrite(self)
        yield session
        if session.begun or self.keyword_index().generation != self.generation:
            self.finish_write()

    # -- articles -----------------------------------------------------------------------
    @reachable
    def records(self) -> dict[str, ArticleRecord]:
        """Every indexed article's fields, by id (no texts)."""
        records: dict[str, ArticleRecord] = {}
        # Paged: one read of 10k entries' metadata took 200 MB while Chroma returned it.
        pages = _pages(self.articles, ["metadatas"], _REGISTRY_PAGE)
        for article_id, meta in ((article_id, meta) for got in pages for article_id, meta
                                 in zip(got["ids"], got["metadatas"] or [], strict=True)):
            m = dict(meta or {})
            records[article_id] = ArticleRecord(
                id=article_id,
                title=str(m.get("title", "")),
                author=m.get("author"),
                published=m.get("published"),
                url=m.get("url"),
                path=m.get("path"),
                content_hash=str(m.get("content_hash", "")),
                text_hash=str(m.get("text_hash", "")),
                passages=int(m.get("passages", 0)),
                raw_hash=str(m.get("raw_hash", "")),
            )
        return records

    @reachable
    def set_raw_hashes(self, raw_hashes: dict[str, str]) -> None:
        """Record new raw hashes of articles whose indexed content did not change (read from
        new bytes, or indexed before raw hashes were kept): the next ingest skips them."""
        ids = list(raw_hashes)
        batch = max(1, int(self.client.get_max_batch_size()))
        for at in range(0, len(ids), batch):
            part = ids[at : at + batch]
            # update() merges into each entry's metadata
            self.articles.update(ids=part, metadatas=[{"raw_hash": raw_hashes[i]} for i in part])

    @reachable
    def published_dates(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Publication date (ISO day, or None) of each of the given articles that exists."""
        if not ids:
            return {}
        got = self.articles.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        return {
            article_id: _optional_str((meta or {}).get("published"))
            for article_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
        }

    @reachable
    def get_articles(self, ids: Sequence[str]) -> dict[str, Article]:
        """Full articles (text included) for the given ids that exist."""
        if not ids:
            return {}
        return self._article_cache.get(ids, self.generation, self._read_articles)

    def _read_articles(self, ids: list[str]) -> dict[str, Article]:
        got = self.articles.get(ids=ids, include=["documents", "metadatas"])
        texts = self.texts.get(got["ids"])
        return {
            article_id: _article_from(article_id, texts.get(article_id, doc or ""),
                                      dict(meta or {}))
            for article_id, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }

    def _with_texts(self, rows: Sequence[tuple[str, str | None, Any, float]]
                    ) -> list[StoredPassage]:
        """Passages from (id, document, metadata, score) rows, their texts cut from their
        articles (an index built before kept each passage's text as its document)."""
        need = [str(dict(meta or {})["article_id"]) for _, doc, meta, _ in rows if doc is None]
        articles = self.get_articles(need) if need else {}
        passages = []
        for pid, doc, meta, score in rows:
            m = dict(meta or {})
            text = doc
            if text is None:
                article = articles.get(str(m["article_id"]))
                text = article.text[int(m["start"]) : int(m["end"])] if article else ""
            passages.append(_stored(pid, text, m, score))
        return passages

    def replace_article(self, article: Article, chunks: Sequence[Chunk], vectors: Any) -> None:
        """Swap one article's passages for new ones (see `replace_articles`)."""
        self.replace_articles([(article, chunks, vectors)])

    @reachable
    def replace_articles(
        self, items: Sequence[tuple[Article, Sequence[Chunk], Any]],
        sentence_vectors: Mapping[str, Any] | None = None,
        heading_vectors: Mapping[str, Any] | None = None,
    ) -> None:
        """Swap several articles' passages for new ones in a few batched writes; the
        registry entries are written last.

        Until an article's registry entry carries its new content hash, a crash here only
        means the next ingest redoes it: passages are deleted by article id first, so no
        orphan survives a retry. One batched call costs about what one single-article call
        does, so a flush of many articles is several times faster than article by article.
        """
        if not items:
            return
        self.passages.delete(where={"article_id": {"$in": [a.id for a, _, _ in items]}})
        if self.sentence_file is not None:
            # Rows of passages that no longer exist would only be dead weight.
            self.sentence_file.remove_articles([a.id for a, _, _ in items])
            if sentence_vectors:
                self.sentence_file.put(
                    (c.id, c.article_id, c.sentences, sentence_vectors[c.id])
                    for _, article_chunks, _ in items for c in article_chunks
                    if c.id in sentence_vectors
                )
            if heading_vectors:
                self.sentence_file.put_headings(
                    (a.id, a.headings, heading_vectors[a.id])
                    for a, _, _ in items if a.id in heading_vectors
                )
        chunks = [c for _, article_chunks, _ in items for c in article_chunks]
        article_of = {a.id: a for a, _, _ in items}
        vectors = np.concatenate(
            [np.asarray(v, dtype=np.float32).reshape(len(c), -1) for _, c, v in items if len(c)]
        ) if chunks else np.zeros((0, 1), dtype=np.float32)
        batch = max(1, int(self.client.get_max_batch_size()))
        for at in range(0, len(chunks), batch):
            part = chunks[at : at + batch]
            self.passages.add(  # no documents: texts are cut from the articles
                ids=[c.id for c in part],
                embeddings=vectors[at : at + batch],
                metadatas=[_passage_metadata(c, article_of[c.article_id]) for c in part],
            )
        # Texts and article rows before the registry entries that make the articles count
        # as indexed.
        self.texts.put([(a.id, a.text) for a, _, _ in items], batch)
        self._put_article_rows(items, batch)
        for at in range(0, len(items), batch):
            part_items = items[at : at + batch]
            ids = [a.id for a, _, _ in part_items]
            # An upsert without documents would keep the document an index built before
            # held (the text then), stale beside the new one: the entries go first.
            self.articles.delete(ids=ids)
            self.articles.upsert(
                ids=ids,
                # the registry is looked up by id, never by vector
                embeddings=[[1.0]] * len(part_items),
                metadatas=[_article_metadata(a, len(c)) for a, c, _ in part_items],
            )

    def _put_article_rows(self, items: Sequence[tuple[Article, Sequence[Chunk], Any]],
                          batch: int) -> None:
        """Each article's row of the article vectors, computed here where its passages'
        vectors are in hand; an article without passages keeps none."""
        without = [a.id for a, c, _ in items if not len(c)]
        if without:
            self.article_rows.delete(ids=without)
        rows = [(a.id, direction(np.asarray(v, dtype=np.float32).reshape(len(c), -1)))
                for a, c, v in items if len(c)]
        for at in range(0, len(rows), batch):
            part = rows[at : at + batch]
            self.article_rows.upsert(ids=[article_id for article_id, _ in part],
                                     embeddings=np.stack([row for _, row in part]))

    @reachable
    def passage_vectors(self, article_ids: Sequence[str],
                        ) -> dict[str, dict[tuple[int, int], Any]]:
        """Stored vectors by article, then by passage (start, end): what a moved article
        (same content hash, so the same text at those offsets) reuses instead of embedding
        its passages again. One read for all of them."""
        found: dict[str, dict[tuple[int, int], Any]] = {i: {} for i in article_ids}
        if not article_ids:
            return found
        got = self.passages.get(where={"article_id": {"$in": list(article_ids)}},
                                include=["embeddings", "metadatas"])
        vectors = got["embeddings"] if got["embeddings"] is not None else []
        for meta, vector in zip(got["metadatas"] or [], vectors, strict=True):
            key = (int(meta["start"]), int(meta["end"]))
            found[str(meta["article_id"])][key] = vector
        return found

    @reachable
    def remove_articles(self, article_ids: Sequence[str]) -> None:
        """Drop several articles: passages, texts, rows, then registry entries (last, as
        they are written last: a crash before them leaves the articles registered, and the
        next ingest's prune drops them again)."""
        if article_ids:
            self.passages.delete(where={"article_id": {"$in": list(article_ids)}})
            self.texts.remove(article_ids)
            self.article_rows.delete(ids=list(article_ids))
            self.articles.delete(ids=list(article_ids))
            if self.sentence_file is not None:
                self.sentence_file.remove_articles(article_ids)

    @reachable
    def remove_article(self, article_id: str) -> None:
        self.remove_articles([article_id])

    def sentence_vectors(self, article_ids: Sequence[str]) -> dict[SentenceKey, Any]:
        """The sentence vectors kept at ingest for those articles, by (article id, start,
        end)."""
        if self.sentence_file is None:
            return {}
        return self.sentence_file.of_articles(article_ids)

    def passage_sentence_vectors(self, passage_ids: Sequence[str]) -> dict[str, Any]:
        """The sentence vectors kept at ingest for those passages, by passage id (rows in
        the order of each passage's sentence spans)."""
        if self.sentence_file is None:
            return {}
        return self.sentence_file.of_passages(passage_ids)

    def heading_vectors(self, article_ids: Sequence[str]) -> dict[SentenceKey, Any]:
        """The section headings' vectors kept at ingest, by (article id, start, end)."""
        if self.sentence_file is None:
            return {}
        return self.sentence_file.headings_of(article_ids)

    @reachable
    def count(self) -> int:
        return int(self.passages.count())

    # -- search -------------------------------------------------------------------------
    @reachable
    def dense_search(self, vector: Sequence[float], depth: int) -> list[StoredPassage]:
        """Nearest passages by cosine similarity (score = 1 - distance), best first."""
        # Chroma returns fewer than `depth` when it holds fewer, so no count() up front:
        # that would cost as much as the search itself on every question.
        got = self.passages.query(
            query_embeddings=[list(vector)],
            n_results=depth,
            include=["documents", "metadatas", "distances"],
        )
        if not got["ids"][0] and self.count() == 0:
            raise IndexNotBuilt("nothing is indexed yet: run `dossier ingest` first")
        return self._with_texts([
            (pid, doc, meta, 1.0 - float(dist))
            for pid, doc, meta, dist in zip(
                got["ids"][0],
                (got["documents"] or [[]])[0],
                (got["metadatas"] or [[]])[0],
                (got["distances"] or [[]])[0],
                strict=True,
            )
        ])

    @reachable
    def dense_hits(self, vector: Sequence[float], depth: int) -> list[PassageHit]:
        """Like `dense_search`, without reading the passages' texts: most of a search's time
        (and its slow tail) went to reading 50 documents of which the answer keeps 6.

        Chroma gives ids and distances only; what a hit carries comes from the passage
        table (metadata read back from Chroma cost 2-3x the distances alone)."""
        got = self.passages.query(
            query_embeddings=[list(vector)], n_results=depth, include=["distances"],
        )
        ids, distances = got["ids"][0], (got["distances"] or [[]])[0]
        if not ids and self.count() == 0:
            raise IndexNotBuilt("nothing is indexed yet: run `dossier ingest` first")
        found = self.passage_hits(ids)
        return [replace(found[pid], score=1.0 - float(distance))
                for pid, distance in zip(ids, distances, strict=True) if pid in found]

    @reachable
    def passage_hits(self, ids: Sequence[str]) -> dict[str, PassageHit]:
        """The given passages that exist, as hits (score 0), without their texts: from the
        passage table, and from Chroma only for what it does not hold (a passage written
        since this generation began)."""
        if not ids:
            return {}
        table = self.passage_table()
        found: dict[str, PassageHit] = {}
        for pid in ids:
            placed = table.article_and_date(pid)
            if placed is not None:
                found[pid] = PassageHit(pid, *placed, dated=True)
        missing = [pid for pid in ids if pid not in found]
        if missing:
            got = self.passages.get(ids=missing, include=["metadatas"])
            found.update((pid, _hit(pid, meta, 0.0))
                         for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=True))
        return found

    @reachable
    def term_rarity(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25's inverse document frequency of each term over the passages."""
        keyword: KeywordSearch = self.keyword_index()
        return keyword.idf(terms)

    @reachable
    def keyword_search(self, query: str, depth: int) -> list[tuple[str, float]]:
        keyword: KeywordSearch = self.keyword_index()  # all a search needs of it
        return keyword.search(query, depth)

    @reachable
    def article_keyword_search(self, query: str, depth: int) -> list[tuple[str, float]]:
        """Article ids and BM25 scores over whole articles (title weighted), best first."""
        return self.article_keyword_index().search(query, depth)

    @reachable
    def article_dense_search(self, vector: Sequence[float], depth: int
                             ) -> list[tuple[str, float]]:
        """Article ids and cosine similarities of the whole articles (their passages'
        mean direction) to `vector`, best first."""
        return self.article_vector_index().search(vector, depth)

    @reachable
    def get_passages(self, ids: Sequence[str]) -> dict[str, StoredPassage]:
        """The given passages that exist, with their texts: placed by the passage table
        and cut from their articles (kept in memory once read); Chroma is read only for
        passages the table does not hold."""
        if not ids:
            return {}
        table = self.passage_table()
        rows = [row for row in map(table.row, ids) if row is not None]
        articles = self.get_articles([row.article_id for row in rows])
        found = {row.id: _placed(row, articles[row.article_id])
                 for row in rows if row.article_id in articles}
        missing = [pid for pid in ids if pid not in found]
        if missing:
            got = self.passages.get(ids=missing, include=["documents", "metadatas"])
            read = zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
            found.update((p.id, p) for p in self._with_texts([(*row, 0.0) for row in read]))
        return found

    def iter_passages(self, page: int = 5000, *,
                      each_metadata: Callable[[str, Mapping[str, Any]], None] | None = None,
                      ) -> Iterator[tuple[str, str]]:
        """(id, text) of every passage, paged so a large corpus never loads at once;
        `each_metadata` sees each passage's id and metadata as its page is read."""
        for got in _pages(self.passages, ["documents", "metadatas"], page):
            rows = list(zip(got["ids"], got["documents"] or [], got["metadatas"] or [],
                            strict=True))
            if each_metadata is not None:
                for pid, _, meta in rows:
                    each_metadata(pid, meta or {})
            for passage in self._with_texts([(*row, 0.0) for row in rows]):
                yield passage.id, passage.text

    def iter_article_vectors(self, page: int = _REGISTRY_PAGE) -> Iterator[tuple[str, Any]]:
        """(article id, vector) pairs for `ArticleVectors.build`: each article's row as the
        ingest kept it; for an article indexed before rows were kept, its passages'
        vectors."""
        older: list[str] = []
        for got in _pages(self.articles, ["metadatas"], page):
            ids = [article_id for article_id, meta in zip(
                got["ids"], got["metadatas"] or [], strict=True)
                if int((meta or {}).get("passages", 1))]
            rows = self.article_rows.get(ids=ids, include=["embeddings"]) if ids else None
            found = set(rows["ids"]) if rows else set()
            if rows and found:
                yield from zip(rows["ids"], rows["embeddings"], strict=True)
            older.extend(article_id for article_id in ids if article_id not in found)
        if not older:
            return
        # A few such articles: their passages by article id. Many (an index built before
        # rows were kept): every passage page by page, as before rows were kept; reads by
        # article id took 250 MB more for all of a 10k index's (BENCHMARKS.md).
        if len(older) <= _OLDER_ARTICLES_A_READ:
            pages: Iterable[Any] = [self.passages.get(
                where={"article_id": {"$in": older}}, include=["embeddings", "metadatas"])]
        else:
            pages = _pages(self.passages, ["embeddings", "metadatas"], 5000)
        wanted = set(older)
        for got in pages:
            vectors = got["embeddings"] if got["embeddings"] is not None else []
            for meta, vector in zip(got["metadatas"] or [], vectors, strict=True):
                article_id = str((meta or {})["article_id"])
                if article_id in wanted:
                    yield article_id, vector

    def iter_articles(self, page: int = 500) -> Iterator[tuple[str, str, str]]:
        """(id, title, text) of every article, paged like `iter_passages`."""
        for got in _pages(self.articles, ["documents", "metadatas"], page):
            texts = self.texts.get(got["ids"])
            for article_id, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            ):
                yield article_id, str((meta or {}).get("title", "")), texts.get(
                    article_id, doc or "")

    @reachable
    def keyword_index(self) -> KeywordIndex:
        """The keyword index for the store's current generation, rebuilt when stale."""
        self._keyword = self._current(
            self._keyword, self.keyword_dir, self._rebuild_keyword, "keyword index",
            KeywordIndex.load,
        )
        return self._keyword

    @reachable
    def article_keyword_index(self) -> KeywordIndex:
        """The whole-article keyword index for the current generation, rebuilt when stale."""
        self._article_keyword = self._current(
            self._article_keyword, self.article_keyword_dir, self._rebuild_article_keyword,
            "article keyword index", KeywordIndex.load,
        )
        return self._article_keyword

    @reachable
    def passage_table(self) -> PassageTable:
        """Every passage's place and date for the current generation, rebuilt when stale."""
        self._passage_table = self._current(
            self._passage_table, self.passage_table_dir, self._rebuild_passage_table,
            "passage table", PassageTable.load,
        )
        return self._passage_table

    @reachable
    def article_vector_index(self) -> ArticleVectors:
        """The articles' vectors for the current generation, rebuilt when stale."""
        self._article_vectors = self._current(
            self._article_vectors, self.article_vectors_dir, self._rebuild_article_vectors,
            "article vectors", ArticleVectors.load,
        )
        return self._article_vectors

    def _current(
        self,
        held: _Derived | None,
        folder: Path,
        rebuild: Callable[[str], _Derived],
        name: str,
        load: Callable[[Path], _Derived | None],
    ) -> _Derived:
        """`held` if it carries the store's generation, else the saved one if it does,
        else one rebuilt from the store."""
        generation = self.generation
        if held is not None and held.generation == generation:
            return held
        loaded = load(folder)
        if loaded is not None and loaded.generation == generation:
            return loaded
        log.info("%s is stale: rebuilding it from the store", name)
        return rebuild(generation)

    @returning_freed_memory
    def _rebuild_keyword(self, generation: str) -> KeywordIndex:
        # Streamed from Chroma page by page: memory grows with the index, not with the texts.
        index = KeywordIndex.build_streamed(self.iter_passages(), generation)
        index.save(self.keyword_dir)
        return index

    @returning_freed_memory
    def _rebuild_keyword_and_table(self, generation: str) -> tuple[KeywordIndex, PassageTable]:
        """The passages' keyword index and the passage table from one read of the passages:
        each needs every passage's metadata, and reading them twice was the end of a large
        write's slowest and largest step (BENCHMARKS.md)."""
        rows = PassageTableRows()
        index = KeywordIndex.build_streamed(self.iter_passages(each_metadata=rows.add),
                                            generation)
        index.save(self.keyword_dir)
        table = self._dated_table(rows, generation)
        return index, table

    @returning_freed_memory
    def _rebuild_article_keyword(self, generation: str) -> KeywordIndex:
        # Streamed like the passages' index: one page of article texts at a time.
        articles = ((article_id, article_text(title, text))
                    for article_id, title, text in self.iter_articles())
        index = KeywordIndex.build_streamed(articles, generation, **ARTICLE_BM25)
        index.save(self.article_keyword_dir)
        return index

    @returning_freed_memory
    def _rebuild_passage_table(self, generation: str) -> PassageTable:
        # Metadata only, page by page; dates from the registry (see PassageTable).
        rows = PassageTableRows()
        for got in _pages(self.passages, ["metadatas"], 5000):
            for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                rows.add(pid, meta or {})
        return self._dated_table(rows, generation)

    def _dated_table(self, rows: PassageTableRows, generation: str) -> PassageTable:
        """The table of `rows`, dated from the registry, and saved."""
        published = {i: r.published for i, r in self.records().items()}
        table = rows.table(published, generation)
        table.save(self.passage_table_dir)
        return table

    @returning_freed_memory
    def _rebuild_article_vectors(self, generation: str) -> ArticleVectors:
        # From the rows the ingest kept: nothing is embedded again, and the passages'
        # vectors are not read (at 141k passages that read was the rebuild's peak).
        vectors = ArticleVectors.build(self.iter_article_vectors(), generation)
        vectors.save(self.article_vectors_dir)
        return vectors


class StoreWrite:
    """The changes of one `PassageStore.write()`; the first one marks the store as changing."""

    def __init__(self, store: PassageStore) -> None:
        self.store = store
        self.begun = False

    def _begin(self) -> None:
        if not self.begun:
            self.store.begin_write()
            self.begun = True

    def replace_articles(self, items: Sequence[tuple[Article, Sequence[Chunk], Any]],
                         sentence_vectors: Mapping[str, Any] | None = None,
                         heading_vectors: Mapping[str, Any] | None = None) -> None:
        self._begin()
        self.store.replace_articles(items, sentence_vectors, heading_vectors)

    def remove_article(self, article_id: str) -> None:
        self._begin()
        self.store.remove_article(article_id)

    def remove_articles(self, article_ids: Sequence[str]) -> None:
        self._begin()
        self.store.remove_articles(article_ids)


def _pages(collection: Any, include: list[str], page: int) -> Iterator[Any]:
    """A collection read `page` entries at a time (each a Chroma get result)."""
    offset = 0
    while True:
        got = collection.get(include=include, limit=page, offset=offset)
        if not got["ids"]:
            return
        yield got
        offset += len(got["ids"])


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _hit(pid: str, meta: Any, score: float) -> PassageHit:
    m = dict(meta or {})
    published = m.get("published")
    return PassageHit(
        id=pid,
        article_id=str(m["article_id"]),
        published=str(published) if published else None,
        dated=published is not None,
        score=score,
    )


def _placed(row: PassageRow, article: Article) -> StoredPassage:
    """A table row as a stored passage, its text cut from its article."""
    return StoredPassage(id=row.id, article_id=row.article_id, start=row.start, end=row.end,
                         text=article.text[row.start : row.end], heading=row.heading,
                         sentences=row.sentences)


def _stored(pid: str, doc: str | None, meta: Any, score: float) -> StoredPassage:
    m = dict(meta or {})
    return StoredPassage(
        id=pid,
        article_id=str(m["article_id"]),
        start=int(m["start"]),
        end=int(m["end"]),
        text=doc or "",
        heading=m.get("heading"),
        sentences=tuple(tuple(s) for s in json.loads(m.get("sentences", "[]"))),
        score=score,
    )
