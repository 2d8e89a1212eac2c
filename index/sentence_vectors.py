"""Passages' sentence vectors from ingest, int8 in a SQLite file beside the index."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.models import Span

_SCHEMA = """
create table if not exists sentences (
    passage_id text primary key,
    article_id text not null,
    dimension integer not null,
    spans blob not null,
    vectors blob not null
);
create index if not exists sentences_by_article on sentences (article_id);
create table if not exists headings (
    article_id text primary key,
    dimension integer not null,
    spans blob not null,
    vectors blob not null
);
"""
# SQLite's default limit of bound parameters is 32,766 on current builds, 999 on old ones.
_IDS_PER_QUERY = 900

SentenceKey = tuple[str, int, int]  # (article id, start, end)


def quantize(matrix: Any) -> bytes:
    """Rows of unit vectors as int8 with one float32 scale per row: about a quarter of
    float32's size, dot products within about 0.01 of it."""
    rows = np.asarray(matrix, dtype=np.float32)
    scales = np.maximum(np.abs(rows).max(axis=1, initial=0.0), 1e-12) / 127.0
    codes = np.round(rows / scales[:, None]).astype(np.int8)
    return scales.astype(np.float32).tobytes() + codes.tobytes()


def dequantize(blob: bytes, dimension: int) -> Any:
    """The float32 matrix `quantize` stored (rows renormalised to unit length)."""
    count = len(blob) // (4 + dimension)
    scales = np.frombuffer(blob, dtype=np.float32, count=count)
    codes = np.frombuffer(blob, dtype=np.int8, offset=4 * count).reshape(count, dimension)
    rows = codes.astype(np.float32) * scales[:, None]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class SentenceVectorFile:
    """Each passage's sentence vectors with their spans, by passage and by article.

    Kept in the data dir, not in Chroma: as Chroma metadata every vector would be stored
    twice (a row and an index of metadata strings) as text. Derived data: a sentence
    without a row gets its vector computed at question time, so an index built before,
    or a Chroma server filled by another machine, still answers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, check_same_thread=False)
            # A passage's row is about 2.3 KB: one row fits a 4 KB page, not two, so a
            # third of each page stayed empty. In 64 KB pages, rows pack to ~98 %. Only a
            # new file takes it (a file made before keeps its pages, and still opens).
            connection.execute("pragma page_size = 65536")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    def put(self, rows: Iterable[tuple[str, str, Sequence[Span], Any]]) -> None:
        """Store (passage id, article id, sentence spans, matrix) rows, replacing earlier
        ones; row i of a matrix is the vector of span i."""
        encoded = [(pid, aid, int(np.shape(m)[1]),
                    np.asarray(spans, dtype=np.int32).tobytes(), quantize(m))
                   for pid, aid, spans, m in rows if len(m)]
        if not encoded:
            return
        with self._lock:
            db = self._db()
            with db:  # one transaction
                db.executemany(
                    "insert or replace into sentences values (?, ?, ?, ?, ?)", encoded
                )

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
        for article_id, spans, matrix in self._rows("article_id", article_ids):
            for (start, end), vector in zip(spans, matrix, strict=True):
                found[(article_id, start, end)] = vector
        return found

    def of_passages(self, passage_ids: Sequence[str]) -> dict[str, Any]:
        """The stored matrices of those passages that have one, by passage id."""
        return {pid: matrix for pid, _, matrix in self._rows("passage_id", passage_ids)}

    def _rows(self, column: str, keys: Sequence[str], table: str = "sentences",
              ) -> list[tuple[str, Any, Any]]:
        """(key, spans as [start, end] lists, matrix) of the rows whose `column` is a key."""
        rows: list[tuple[str, Any, Any]] = []
        if not keys or not self.path.exists():
            return rows
        with self._lock:
            db = self._db()
            for at in range(0, len(keys), _IDS_PER_QUERY):
                part = list(keys[at : at + _IDS_PER_QUERY])
                marks = ",".join("?" * len(part))
                for key, dimension, spans, blob in db.execute(
                    f"select {column}, dimension, spans, vectors from {table}"
                    f" where {column} in ({marks})",
                    part,
                ):
                    pairs = np.frombuffer(spans, dtype=np.int32).reshape(-1, 2).tolist()
                    rows.append((key, pairs, dequantize(blob, dimension)))
        return rows

    def remove_articles(self, article_ids: Sequence[str]) -> None:
        if not article_ids or not self.path.exists():
            return
        with self._lock:
            db = self._db()
            with db:
                for at in range(0, len(article_ids), _IDS_PER_QUERY):
                    part = list(article_ids[at : at + _IDS_PER_QUERY])
                    marks = ",".join("?" * len(part))
                    db.execute(f"delete from sentences where article_id in ({marks})", part)
                    db.execute(f"delete from headings where article_id in ({marks})", part)

    def reset(self) -> None:
        if self.path.exists():
            with self._lock, self._db() as db:
                db.execute("delete from sentences")
                db.execute("delete from headings")
