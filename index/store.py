"""The Chroma store: passages with vectors, an article registry, and the keyword index beside it."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.errors import NotFoundError

from index.errors import EmbeddingModelMismatch, IndexNotBuilt, StoreUnavailable
from index.keyword import ARTICLE_BM25, KeywordIndex, article_text
from index.models import Article, Chunk

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def is_outage(exc: BaseException) -> bool:
    """A failure to reach the store, as opposed to a bug or a bad request: a transport error
    of httpx (Chroma's HTTP client) or of the OS, raised as is or re-raised by chromadb
    (which turns httpx.ConnectError into a ValueError, keeping it as the context)."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; the bound only guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reachable(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turn a server outage during a store call into StoreUnavailable (one clear line)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if is_outage(exc):
                raise StoreUnavailable(
                    f"the Chroma store is unavailable right now ({type(exc).__name__})"
                ) from exc
            raise

    return wrapper

SCHEMA_VERSION = 1
_ARTICLES_SUFFIX = "-articles"


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


def make_client(chroma_path: Path, chroma_url: str = "") -> Any:
    """An HttpClient for a Chroma server URL, else a PersistentClient under the data dir."""
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if chroma_url:
            parsed = urlparse(chroma_url)
            if not parsed.hostname:
                raise StoreUnavailable(f"store.chroma_url is not a URL: {chroma_url!r}")
            return chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
        chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)
    except StoreUnavailable:
        raise
    except Exception as exc:  # chromadb raises bare ValueError/ConnectionError variants
        where = chroma_url or str(chroma_path)
        raise StoreUnavailable(f"cannot open the Chroma store at {where}: {exc}") from exc


def _passage_metadata(chunk: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": chunk.article_id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "sentences": json.dumps(chunk.sentences),
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
    for key in ("author", "published", "url", "path", "source"):
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


class PassageStore:
    """Passages (vectors, text, offsets) and articles (full text, fields) in Chroma.

    Chroma is the source of truth; the keyword index is derived from it and tagged with
    the store's `generation`, which every write changes before it starts (and again when it
    is done, see `finish_write`). A writer that dies half-way therefore leaves a generation
    no keyword index carries, and the next reader or writer rebuilds it: the two can never
    silently disagree.
    """

    def __init__(self, client: Any, name: str, model_name: str, keyword_dir: Path) -> None:
        self.client = client
        self.name = name
        self.model_name = model_name
        self.keyword_dir = keyword_dir / name
        self.article_keyword_dir = keyword_dir / (name + _ARTICLES_SUFFIX)
        self._keyword: KeywordIndex | None = None
        self._article_keyword: KeywordIndex | None = None
        self._open_collections()

    def _open_collections(self) -> None:
        try:
            self.passages = self.client.get_or_create_collection(
                self.name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
            self.articles = self.client.get_or_create_collection(
                self.name + _ARTICLES_SUFFIX, embedding_function=None
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach the Chroma store: {exc}") from exc

    # -- collection metadata ------------------------------------------------------------
    @property
    @_reachable
    def metadata(self) -> dict[str, Any]:
        meta = self.client.get_collection(self.name, embedding_function=None).metadata
        return dict(meta or {})

    def _write_metadata(self, **changes: Any) -> None:
        # Chroma's modify() replaces the whole metadata mapping, so merge first.
        meta = {**self.metadata, **changes}
        self.passages.modify(metadata=meta)

    @_reachable
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

    @_reachable
    def reset(self) -> None:
        """Drop every passage and article (for --rebuild)."""
        for collection in (self.name, self.name + _ARTICLES_SUFFIX):
            try:
                self.client.delete_collection(collection)
            except NotFoundError:  # absent already: nothing to drop
                log.debug("collection %s was not there", collection)
        self._keyword = None
        self._article_keyword = None
        self._open_collections()

    @property
    def generation(self) -> str:
        return str(self.metadata.get("generation", "empty"))

    @_reachable
    def begin_write(self) -> str:
        """Mark the store as changing: the keyword index is stale until `finish_write`."""
        generation = uuid.uuid4().hex
        self._write_metadata(generation=generation)
        return generation

    @_reachable
    def finish_write(self) -> KeywordIndex:
        """Seal the write with a new generation, then save the keyword index under it.

        A new generation, not the one `begin_write` set: a reader (another process, or
        another machine on the same Chroma server) that rebuilt its keyword index while
        this write was half-done tagged it with that generation, and must not keep it.
        Any index tagged with the sealed generation was built after every write was done.
        """
        generation = uuid.uuid4().hex
        self._write_metadata(generation=generation)
        self._keyword = self._rebuild_keyword(generation)
        self._article_keyword = self._rebuild_article_keyword(generation)
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
    @_reachable
    def records(self) -> dict[str, ArticleRecord]:
        """Every indexed article's fields, by id (no texts)."""
        got = self.articles.get(include=["metadatas"])
        records: dict[str, ArticleRecord] = {}
        for article_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
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
            )
        return records

    @_reachable
    def published_dates(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Publication date (ISO day, or None) of each of the given articles that exists."""
        if not ids:
            return {}
        got = self.articles.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        return {
            article_id: _optional_str((meta or {}).get("published"))
            for article_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
        }

    @_reachable
    def get_articles(self, ids: Sequence[str]) -> dict[str, Article]:
        """Full articles (text included) for the given ids that exist."""
        if not ids:
            return {}
        got = self.articles.get(ids=list(dict.fromkeys(ids)), include=["documents", "metadatas"])
        return {
            article_id: _article_from(article_id, doc or "", dict(meta or {}))
            for article_id, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }

    def replace_article(self, article: Article, chunks: Sequence[Chunk], vectors: Any) -> None:
        """Swap one article's passages for new ones (see `replace_articles`)."""
        self.replace_articles([(article, chunks, vectors)])

    @_reachable
    def replace_articles(
        self, items: Sequence[tuple[Article, Sequence[Chunk], Any]]
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
        chunks = [c for _, article_chunks, _ in items for c in article_chunks]
        vectors = np.concatenate(
            [np.asarray(v, dtype=np.float32).reshape(len(c), -1) for _, c, v in items if len(c)]
        ) if chunks else np.zeros((0, 1), dtype=np.float32)
        batch = max(1, int(self.client.get_max_batch_size()))
        for at in range(0, len(chunks), batch):
            part = chunks[at : at + batch]
            self.passages.add(
                ids=[c.id for c in part],
                embeddings=vectors[at : at + batch],
                documents=[c.text for c in part],
                metadatas=[_passage_metadata(c) for c in part],
            )
        for at in range(0, len(items), batch):
            part_items = items[at : at + batch]
            self.articles.upsert(
                ids=[a.id for a, _, _ in part_items],
                # the registry is looked up by id, never by vector
                embeddings=[[1.0]] * len(part_items),
                documents=[a.text for a, _, _ in part_items],
                metadatas=[_article_metadata(a, len(c)) for a, c, _ in part_items],
            )

    @_reachable
    def passage_vectors(self, article_ids: Sequence[str],
                        ) -> dict[str, dict[tuple[int, int, str], Any]]:
        """Stored vectors by article, then by passage (start, end, text): what a moved
        article reuses instead of embedding its passages again. One read for all of them."""
        found: dict[str, dict[tuple[int, int, str], Any]] = {i: {} for i in article_ids}
        if not article_ids:
            return found
        got = self.passages.get(where={"article_id": {"$in": list(article_ids)}},
                                include=["embeddings", "documents", "metadatas"])
        vectors = got["embeddings"] if got["embeddings"] is not None else []
        for doc, meta, vector in zip(got["documents"] or [], got["metadatas"] or [], vectors,
                                     strict=True):
            key = (int(meta["start"]), int(meta["end"]), doc or "")
            found[str(meta["article_id"])][key] = vector
        return found

    @_reachable
    def remove_articles(self, article_ids: Sequence[str]) -> None:
        """Drop several articles, passages and registry entries, in two calls."""
        if article_ids:
            self.passages.delete(where={"article_id": {"$in": list(article_ids)}})
            self.articles.delete(ids=list(article_ids))

    @_reachable
    def remove_article(self, article_id: str) -> None:
        self.passages.delete(where={"article_id": article_id})
        self.articles.delete(ids=[article_id])

    @_reachable
    def count(self) -> int:
        return int(self.passages.count())

    # -- search -------------------------------------------------------------------------
    @_reachable
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
        return [
            _stored(pid, doc, meta, 1.0 - float(dist))
            for pid, doc, meta, dist in zip(
                got["ids"][0],
                (got["documents"] or [[]])[0],
                (got["metadatas"] or [[]])[0],
                (got["distances"] or [[]])[0],
                strict=True,
            )
        ]

    @_reachable
    def keyword_search(self, query: str, depth: int) -> list[tuple[str, float]]:
        return self.keyword_index().search(query, depth)

    @_reachable
    def article_keyword_search(self, query: str, depth: int) -> list[tuple[str, float]]:
        """Article ids and BM25 scores over whole articles (title weighted), best first."""
        return self.article_keyword_index().search(query, depth)

    @_reachable
    def get_passages(self, ids: Sequence[str]) -> dict[str, StoredPassage]:
        if not ids:
            return {}
        got = self.passages.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            pid: _stored(pid, doc, meta, 0.0)
            for pid, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }

    def iter_passages(self, page: int = 5000) -> Iterator[tuple[str, str]]:
        """(id, text) of every passage, paged so a large corpus never loads at once."""
        offset = 0
        while True:
            got = self.passages.get(include=["documents"], limit=page, offset=offset)
            if not got["ids"]:
                return
            yield from zip(got["ids"], got["documents"] or [], strict=True)
            offset += len(got["ids"])

    def iter_articles(self, page: int = 500) -> Iterator[tuple[str, str, str]]:
        """(id, title, text) of every article, paged like `iter_passages`."""
        offset = 0
        while True:
            got = self.articles.get(include=["documents", "metadatas"], limit=page, offset=offset)
            if not got["ids"]:
                return
            for article_id, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            ):
                yield article_id, str((meta or {}).get("title", "")), doc or ""
            offset += len(got["ids"])

    @_reachable
    def keyword_index(self) -> KeywordIndex:
        """The keyword index for the store's current generation, rebuilt when stale."""
        self._keyword = self._current(
            self._keyword, self.keyword_dir, self._rebuild_keyword, "keyword index"
        )
        return self._keyword

    @_reachable
    def article_keyword_index(self) -> KeywordIndex:
        """The whole-article keyword index for the current generation, rebuilt when stale."""
        self._article_keyword = self._current(
            self._article_keyword, self.article_keyword_dir, self._rebuild_article_keyword,
            "article keyword index",
        )
        return self._article_keyword

    def _current(
        self,
        held: KeywordIndex | None,
        folder: Path,
        rebuild: Callable[[str], KeywordIndex],
        name: str,
    ) -> KeywordIndex:
        """`held` if it carries the store's generation, else the saved one if it does,
        else one rebuilt from the store."""
        generation = self.generation
        if held is not None and held.generation == generation:
            return held
        loaded = KeywordIndex.load(folder)
        if loaded is not None and loaded.generation == generation:
            return loaded
        log.info("%s is stale: rebuilding it from the store", name)
        return rebuild(generation)

    def _rebuild_keyword(self, generation: str) -> KeywordIndex:
        ids: list[str] = []
        texts: list[str] = []
        for pid, text in self.iter_passages():
            ids.append(pid)
            texts.append(text)
        index = KeywordIndex.build(ids, texts, generation)
        index.save(self.keyword_dir)
        return index

    def _rebuild_article_keyword(self, generation: str) -> KeywordIndex:
        ids: list[str] = []
        texts: list[str] = []
        for article_id, title, text in self.iter_articles():
            ids.append(article_id)
            texts.append(article_text(title, text))
        index = KeywordIndex.build(ids, texts, generation, **ARTICLE_BM25)
        index.save(self.article_keyword_dir)
        return index


class StoreWrite:
    """The changes of one `PassageStore.write()`; the first one marks the store as changing."""

    def __init__(self, store: PassageStore) -> None:
        self.store = store
        self.begun = False

    def _begin(self) -> None:
        if not self.begun:
            self.store.begin_write()
            self.begun = True

    def replace_articles(self, items: Sequence[tuple[Article, Sequence[Chunk], Any]]) -> None:
        self._begin()
        self.store.replace_articles(items)

    def remove_article(self, article_id: str) -> None:
        self._begin()
        self.store.remove_article(article_id)

    def remove_articles(self, article_ids: Sequence[str]) -> None:
        self._begin()
        self.store.remove_articles(article_ids)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


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
