"""Shared fixtures: an isolated data dir per test, the real model once, and a fake one."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from index.embeddings import SentenceEmbeddings

PROJECT = Path(__file__).resolve().parent.parent
SEED = PROJECT / "corpus" / "mexico-canada-critical-minerals.txt"
BENCHMARKS = PROJECT.parent / "shared" / "benchmarks"
REALTIMEQA = BENCHMARKS / "realtimeqa-news"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

_WORD = re.compile(r"\w+")

pytest_plugins = ["chroma_fixtures"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data dir and no Dossier settings from the outer environment."""
    for key in list(os.environ):
        if key.startswith("DOSSIER_") or key in ("TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"):
            monkeypatch.delenv(key, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DOSSIER_DATA_DIR", str(data_dir))
    yield data_dir


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbeddings:
    """The real bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    model = SentenceEmbeddings()
    model.encode(["warm up"])
    return model


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


@pytest.fixture
def fake_embedder() -> FakeEmbeddings:
    return FakeEmbeddings()
