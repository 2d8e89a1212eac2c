"""Hashed bag-of-words embeddings, for tests of logic that does not depend on meaning."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from index.embeddings import SentenceEmbeddings

_WORD = re.compile(r"\w+")


class FakeEmbeddings(SentenceEmbeddings):
    """Hashed bag-of-words vectors: for logic that does not depend on meaning."""

    def __init__(self, dimension: int = 32, max_tokens: int = 256) -> None:
        super().__init__("fake-hash-embeddings")
        self._dimension = dimension
        self._max_tokens = max_tokens

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) or 1 for t in texts]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension
                out[row, bucket] += 1.0
            out[row, 0] += 1e-3  # never a zero vector: cosine needs a direction
        return out / np.linalg.norm(out, axis=1, keepdims=True)
