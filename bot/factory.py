"""The one place that turns Settings into the store, embedder, ingestor and answerer."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from bot.errors import IngestLocked
from bot.settings import Settings
from index.embeddings import SentenceEmbeddings
from index.ingest import Ingestor
from index.store import PassageStore, make_client

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from bot.answer import Answerer
    from bot.chat import Conversation
    from bot.retrieval import HybridRetriever


class Dossier:
    """Lazily built collaborators for one Settings: front ends ask this for what they need."""

    def __init__(self, settings: Settings, embedder: SentenceEmbeddings | None = None) -> None:
        self.settings = settings
        self._embedder = embedder

    @cached_property
    def embedder(self) -> SentenceEmbeddings:
        if self._embedder is not None:
            return self._embedder
        index = self.settings.index
        return SentenceEmbeddings(
            index.model, device=index.device, batch_size=index.batch_size,
            precision=index.precision, int8_dir=self.settings.data_dir / "int8",
        )

    @cached_property
    def store(self) -> PassageStore:
        client = make_client(self.settings.chroma_path, self.settings.store.chroma_url)
        return PassageStore(
            client,
            self.settings.store.collection,
            self.embedder.model_name,
            keyword_dir=self.settings.data_dir / "keyword",
        )

    def ingestor(self, *, rebuild: bool = False) -> Ingestor:
        self.store.check_model(self.embedder.dimension, rebuild=rebuild)
        return Ingestor(
            self.store,
            self.embedder,
            max_passage_tokens=self.settings.index.max_passage_tokens,
            context_in_embedding=self.settings.index.context_in_embedding,
            max_bytes=int(self.settings.corpus.max_file_mb * 1024 * 1024),
        )

    def write_lock(self) -> FileLock:
        """One writer per data dir: a second ingest refuses instead of interleaving writes."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.settings.data_dir / "ingest.lock"), timeout=0)

    def locked(self, lock: FileLock) -> FileLock:
        try:
            lock.acquire()
        except Timeout:
            raise IngestLocked(
                f"another `dossier ingest` is writing to {self.settings.data_dir}; "
                "try again when it has finished"
            ) from None
        return lock

    @cached_property
    def retriever(self) -> HybridRetriever:
        from bot.retrieval import HybridRetriever

        return HybridRetriever.from_settings(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def chat_model(self) -> BaseChatModel | None:
        from bot.llm import make_chat_model

        return make_chat_model(self.settings.llm)

    @cached_property
    def answerer(self) -> Answerer:
        from bot.answer import Answerer

        return Answerer(
            self.retriever,
            self.embedder,
            self.settings.answer,
            chat_model=self.chat_model,
            llm_timeout_s=self.settings.llm.timeout_s,
        )

    def conversation(self) -> Conversation:
        from bot.chat import Conversation

        return Conversation(self.answerer, history_turns=self.settings.chat.history_turns)

    def corpus_path(self) -> Path:
        return self.settings.corpus.path
