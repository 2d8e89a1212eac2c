"""Passages' sentence vectors from ingest, int8 in a SQLite file beside the index."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.models import Span

_SCHEMA = """
create table if not exists article_sentences (
    article_id text primary key,
    dimension integer not null,
    passages text not null,
    spans blob not null,
    vectors blob not null
);
create table if not exists headings (
    article_id text primary key,
    dimension integer not null,
    spans blob not null,
    vectors blob not null
);
"""
# An earlier version kept one row per passage, keyed by passage id, in this table: its
# rows are still read (and dropped with their article) until the article is written again.
_EARLIER_TABLE = "sentences"
# SQLite's default limit of bound parameters is 32,766 on current builds, 999 on old ones.
_IDS_PER_QUERY = 900

SentenceKey = tuple[str, int, int]  # (article id, start, end)
# An article's stored sentences: its passages' id tails with their sentence counts, the
# spans, the vectors as `quantize` wrote them (row i for span i, passages one after
# another), and their dimension. Decoded only as far as a reader needs.
_ArticleRows = tuple[list[tuple[str, int]], bytes, bytes, int]


def article_of(passage_id: str) -> tuple[str, str]:
    """(article id, tail) of a passage id, which is `{article id}:{tail}` (see Chunk.id)."""
    article_id, _, tail = passage_id.rpartition(":")
    if not article_id:
        raise ValueError(f"not a passage id: {passage_id!r}")
    return article_id, tail


def quantize(matrix: Any) -> bytes:
    """Rows of unit vectors as int8 with one float32 scale per row: about a quarter of
    float32's size, dot products within about 0.01 of it."""
    rows = np.asarray(matrix, dtype=np.float32)
    scales = np.maximum(np.abs(rows).max(axis=1, initial=0.0), 1e-12) / 127.0
    codes = np.round(rows / scales[:, None]).astype(np.int8)
    return scales.astype(np.float32).tobytes() + codes.tobytes()


def dequantize(blob: bytes, dimension: int, start: int = 0, stop: int | None = None) -> Any:
    """The float32 matrix `quantize` stored, or its rows start..stop (renormalised to unit
    length); only those rows are decoded."""
    count = len(blob) // (4 + dimension)
    stop = count if stop is None else stop
    scales = np.frombuffer(blob, dtype=np.float32, count=stop - start, offset=4 * start)
    codes = np.frombuffer(blob, dtype=np.int8, count=(stop - start) * dimension,
                          offset=4 * count + start * dimension).reshape(-1, dimension)
    rows = codes.astype(np.float32) * scales[:, None]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class SentenceVectorFile:
    """Each passage's sentence vectors with their spans, one row per article.

    Kept in the data dir, not in Chroma: as Chroma metadata every vector would be stored
    twice (a row and an index of metadata strings) as text. One row per article, not per
    passage: a passage's long id (its article's path, then a digest) was written twice
    more, in its row and in an index, and the article's id twice more again: 8 MB of ids
    beside 42 MB of vectors on the 1,427 news articles. And a passage's row (2.3 KB) filled
    a 4 KB page alone; an article's (about 30 KB) runs over full overflow pages, so the file
    is 1.03 times its contents in SQLite's default pages. Derived data: a sentence without a
    row gets its vector computed at question time, so an index built before, or a Chroma
    server filled by another machine, still answers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._earlier_rows = False  # the file holds an earlier version's per-passage rows
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, check_same_thread=False)
            connection.executescript(_SCHEMA)
            self._earlier_rows = connection.execute(
                "select 1 from sqlite_master where type = 'table' and name = ?",
                (_EARLIER_TABLE,),
            ).fetchone() is not None
            self._connection = connection
        return self._connection

    def put(self, rows: Iterable[tuple[str, str, Sequence[Span], Any]]) -> None:
        """Store (passage id, article id, sentence spans, matrix) rows, replacing what the
        articles had; row i of a matrix is the vector of span i. An article's passages
        come in one call (an ingest writes an article whole)."""
        by_article: dict[str, list[tuple[str, Sequence[Span], Any]]] = {}
        for passage_id, article_id, spans, matrix in rows:
            if len(matrix):
                by_article.setdefault(article_id, []).append((passage_id, spans, matrix))
        encoded = [_encode_article(aid, passages) for aid, passages in by_article.items()]
        if not encoded:
            return
        with self._lock:
            db = self._db()
            with db:  # one transaction
                db.executemany(
                    "insert or replace into article_sentences values (?, ?, ?, ?, ?)", encoded
                )
                if self._earlier_rows:
                    self._delete(db, _EARLIER_TABLE, list(by_article))

    def put_headings(self, rows: Iterable[tuple[str, Sequence[Span], Any]]) -> None:
        """Store (article id, heading spans, matrix) rows: each section heading embedded
        alone, as the answer compares it with the question."""
        encoded = [(aid, int(np.shape(m)[1]), np.asarray(spans, dtype=np.int32).tobytes(),
                    quantize(m)) for aid, spans, m in rows if len(m)]
        if not encoded:
            return
        with self._lock:
            db = self._db()
            with db:
                db.executemany("insert or replace into headings values (?, ?, ?, ?)", encoded)

    def headings_of(self, article_ids: Sequence[str]) -> dict[SentenceKey, Any]:
        """The stored heading vectors of those articles, by (article id, start, end)."""
        found: dict[SentenceKey, Any] = {}
        for article_id, spans, matrix in self._rows("article_id", article_ids, "headings"):
            for (start, end), vector in zip(spans, matrix, strict=True):
                found[(article_id, start, end)] = vector
        return found

    def of_articles(self, article_ids: Sequence[str]) -> dict[SentenceKey, Any]:
        """Every stored sentence vector of those articles, by (article id, start, end)."""
        found: dict[SentenceKey, Any] = {}
        stored = [(aid, np.frombuffer(spans, dtype=np.int32).reshape(-1, 2).tolist(),
                   dequantize(blob, dimension))
                  for aid, (_, spans, blob, dimension) in self._article_rows(article_ids).items()]
        if self._earlier_rows:
            stored += self._rows("article_id", article_ids, _EARLIER_TABLE)
        for article_id, spans, matrix in stored:
            for (start, end), vector in zip(spans, matrix, strict=True):
                found[(article_id, start, end)] = vector
        return found

    def of_passages(self, passage_ids: Sequence[str]) -> dict[str, Any]:
        """The stored matrices of those passages that have one, by passage id."""
        wanted = set(passage_ids)
        found: dict[str, Any] = {}
        articles = self._article_rows(list(dict.fromkeys(article_of(p)[0] for p in wanted)))
        for article_id, (passages, _, blob, dimension) in articles.items():
            at = 0
            for tail, count in passages:
                passage_id = f"{article_id}:{tail}"
                if passage_id in wanted:  # an article holds ~13 passages: decode only these
                    found[passage_id] = dequantize(blob, dimension, at, at + count)
                at += count
        missing = [p for p in passage_ids if p not in found]
        if self._earlier_rows and missing:
            found.update((pid, matrix) for pid, _, matrix
                         in self._rows("passage_id", missing, _EARLIER_TABLE))
        return found

    def _article_rows(self, article_ids: Sequence[str]) -> dict[str, _ArticleRows]:
        """The stored rows of those articles that have one, by article id."""
        rows: dict[str, _ArticleRows] = {}
        for article_id, dimension, passages, spans, blob in self._select(
                "article_id, dimension, passages, spans, vectors", "article_sentences",
                "article_id", article_ids):
            listed = [(str(tail), int(count)) for tail, count in json.loads(passages)]
            rows[article_id] = (listed, spans, blob, dimension)
        return rows

    def _rows(self, column: str, keys: Sequence[str], table: str,
              ) -> list[tuple[str, Any, Any]]:
        """(key, spans as [start, end] lists, matrix) of the rows whose `column` is a key."""
        return [
            (key, np.frombuffer(spans, dtype=np.int32).reshape(-1, 2).tolist(),
             dequantize(blob, dimension))
            for key, dimension, spans, blob in self._select(
                f"{column}, dimension, spans, vectors", table, column, keys)
        ]

    def _select(self, columns: str, table: str, column: str, keys: Sequence[str],
                ) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        if not keys or not self.path.exists():
            return found
        with self._lock:
            db = self._db()
            for at in range(0, len(keys), _IDS_PER_QUERY):
                part = list(keys[at : at + _IDS_PER_QUERY])
                marks = ",".join("?" * len(part))
                found += db.execute(
                    f"select {columns} from {table} where {column} in ({marks})", part
                ).fetchall()
        return found

    def remove_articles(self, article_ids: Sequence[str]) -> None:
        if not article_ids or not self.path.exists():
            return
        with self._lock:
            db = self._db()
            with db:
                for table in self._tables():
                    self._delete(db, table, article_ids)

    def reset(self) -> None:
        if self.path.exists():
            with self._lock, self._db() as db:
                for table in self._tables():
                    db.execute(f"delete from {table}")

    def _tables(self) -> list[str]:
        earlier = [_EARLIER_TABLE] if self._earlier_rows else []
        return ["article_sentences", "headings", *earlier]

    @staticmethod
    def _delete(db: sqlite3.Connection, table: str, article_ids: Sequence[str]) -> None:
        for at in range(0, len(article_ids), _IDS_PER_QUERY):
            part = list(article_ids[at : at + _IDS_PER_QUERY])
            marks = ",".join("?" * len(part))
            db.execute(f"delete from {table} where article_id in ({marks})", part)


def _encode_article(article_id: str, passages: Sequence[tuple[str, Sequence[Span], Any]],
                    ) -> tuple[str, int, str, bytes, bytes]:
    """An article's row: its passages (id tail, sentence count) as JSON, then every
    sentence's span and vector, passage after passage."""
    listed = []
    for passage_id, sentence_spans, matrix in passages:
        owner, tail = article_of(passage_id)
        if len(sentence_spans) != len(matrix):
            raise ValueError(f"passage {passage_id!r}: {len(sentence_spans)} spans, "
                             f"{len(matrix)} vectors")
        if owner != article_id:
            raise ValueError(f"passage {passage_id!r} is not of article {article_id!r}")
        listed.append((tail, len(sentence_spans)))
    every_vector = np.concatenate([np.asarray(m, dtype=np.float32) for _, _, m in passages])
    every_span = np.concatenate([np.asarray(s, dtype=np.int32).reshape(-1, 2)
                                 for _, s, _ in passages])
    return (article_id, int(every_vector.shape[1]), json.dumps(listed), every_span.tobytes(),
            quantize(every_vector))
