"""One vector per article (its passages' mean direction), kept beside Chroma by generation."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.atomic_folder import replace_folder

log = logging.getLogger(__name__)

_META = "dossier.json"
_VECTORS = "vectors.npy"


def direction(passage_vectors: Any) -> np.ndarray:
    """One article's row: its passage vectors (a row each) summed and normalised."""
    total = np.asarray(passage_vectors, dtype=np.float32).astype(np.float64).sum(axis=0)
    norm = float(np.linalg.norm(total))
    return (total / (norm or 1.0)).astype(np.float32)


class ArticleVectors:
    """Each article's passage vectors summed and normalised: the direction of the whole
    article, which a question about a story spread over many paragraphs is near even when
    no single passage is. `ids[i]` is the article of row i of `matrix`.

    Like the keyword indexes, it is valid for one `generation` of the store and is
    rebuilt when that changes: from each article's row, which the ingest stores in a
    collection of its own (index.store), so a rebuild reads one vector per article instead
    of every passage's (an article indexed before that is summed from its passages).
    """

    def __init__(self, ids: list[str], matrix: np.ndarray, generation: str) -> None:
        self.ids = ids
        self.matrix = matrix
        self.generation = generation

    @classmethod
    def build(cls, passages: Iterable[tuple[str, Sequence[float]]], generation: str
              ) -> ArticleVectors:
        """From (article id, vector) pairs in any order: its passages' vectors, or its row."""
        row_of: dict[str, int] = {}
        sums: list[np.ndarray] = []
        for article_id, vector in passages:
            row = row_of.setdefault(article_id, len(row_of))
            if row == len(sums):
                sums.append(np.zeros(len(vector), dtype=np.float64))
            sums[row] += np.asarray(vector, dtype=np.float64)
        if not sums:
            return cls([], np.zeros((0, 0), dtype=np.float32), generation)
        matrix = np.stack(sums)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return cls(list(row_of), matrix, generation)

    def search(self, vector: Sequence[float], depth: int) -> list[tuple[str, float]]:
        """Article ids and cosine similarities to `vector`, best first."""
        if not self.ids or depth <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / (float(np.linalg.norm(query)) or 1.0)
        # einsum's own loop, not BLAS: OpenBLAS splits a product this size over two threads,
        # and on a busy machine the call then waits for the second one to be scheduled
        # (p99 84 ms against 0.05 ms typical, at load 12; one thread: p99 12-28 ms).
        scores = np.einsum("ij,j->i", self.matrix, query)
        depth = min(depth, len(self.ids))
        top = np.argpartition(-scores, depth - 1)[:depth]
        return [(self.ids[int(row)], float(scores[row]))
                for row in top[np.argsort(-scores[top], kind="stable")]]

    def save(self, folder: Path) -> None:
        """Write atomically: a crash mid-save leaves the previous vectors, never half."""

        def write(staging: Path) -> None:
            np.save(staging / _VECTORS, self.matrix)
            meta = {"generation": self.generation, "ids": self.ids}
            (staging / _META).write_text(json.dumps(meta), encoding="utf-8")

        replace_folder(folder, write)

    @classmethod
    def load(cls, folder: Path) -> ArticleVectors | None:
        """The saved vectors, or None when there are none or they are unreadable (said in
        the log: the caller rebuilds them)."""
        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            matrix = np.load(folder / _VECTORS, allow_pickle=False)
            ids = [str(i) for i in meta["ids"]]
            if len(ids) != len(matrix):
                raise ValueError(f"{len(ids)} ids for {len(matrix)} vectors")
            return cls(ids, matrix, str(meta["generation"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("article vectors in %s are unreadable (%r): rebuilding them", folder, exc)
            return None
