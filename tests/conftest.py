"""Shared fixtures: an isolated data dir per test, the real model once, and a fake one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embeddings import SentenceEmbeddings
from tests.support.fakes import FakeEmbeddings

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

pytest_plugins = ["tests.support.chroma_fixtures", "tests.support.gguf",
                  "tests.support.telegram_fixtures"]


@pytest.fixture(scope="session")
def compiled_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of compiled OpenVINO models for the run: never the user's own cache."""
    return tmp_path_factory.mktemp("compiled-models")


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled_models: Path
) -> Iterator[Path]:
    """Every test gets its own data dir and no Dossier settings from the outer environment."""
    for key in list(os.environ):
        if key.startswith("DOSSIER_") or key in ("TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"):
            monkeypatch.delenv(key, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DOSSIER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSSIER_INDEX__COMPILED_CACHE", str(compiled_models))
    yield data_dir


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbeddings:
    """The real bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    model = SentenceEmbeddings()
    model.encode(["warm up"])
    return model


@pytest.fixture
def fake_embedder() -> FakeEmbeddings:
    return FakeEmbeddings()
