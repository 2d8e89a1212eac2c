"""The one place that turns Settings into the store, embedder, ingestor and answerer, and the
core's entries that change the corpus (ingest, add a document) for every front end."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from bot.errors import DossierError
from bot.logs import log_value
from bot.settings import Settings
from bot.uploads import DOCUMENT_EXTENSIONS, UPLOADS_FOLDER, document_extension, save_document
from index import compiled_cache
from index.embeddings import SentenceEmbeddings
from index.sentence_vectors import SentenceVectorFile
from index.store import PassageStore, make_client

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from bot.answer import Answerer
    from bot.chat import Conversation
    from bot.retrieval import HybridRetriever
    from index.ingest import Ingestor, IngestReport, Progress

log = logging.getLogger(__name__)


class IngestLocked(DossierError):
    """Another ingest is writing to the same index."""


class UnsupportedDocument(DossierError):
    """A document of a kind the loaders cannot read."""


@dataclass(frozen=True)
class AddedDocument:
    """What became of a document added to the corpus: its file name among the uploads, its
    article id, the ingest's report, whether it was kept (a document that could not be
    indexed is removed) and whether it replaced an earlier upload of the same name."""

    name: str
    article_id: str
    report: IngestReport
    kept: bool
    replaced: bool = False


@dataclass(frozen=True)
class Upload:
    """A document added through a front end, as it lies in the corpus's uploads folder."""

    name: str
    article_id: str
    size: int


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
            compiled_cache=compiled_cache.resolve(index.compiled_cache),
        )

    @cached_property
    def store(self) -> PassageStore:
        client = make_client(self.settings.chroma_path, self.settings.store.chroma_url)
        return PassageStore(
            client,
            self.settings.store.collection,
            self.embedder.model_name,
            keyword_dir=self.settings.data_dir / "keyword",
            sentence_file=SentenceVectorFile(
                self.settings.data_dir / "sentences" / f"{self.settings.store.collection}.sqlite"
            ),
        )

    def ingestor(self, *, rebuild: bool = False) -> Ingestor:
        # Imported here: a question needs none of the loaders (HTML, PDF) an ingest does.
        from index.ingest import Ingestor

        self.store.check_model(self.embedder.dimension, rebuild=rebuild)
        return Ingestor(
            self.store,
            self.embedder,
            max_passage_tokens=self.settings.index.max_passage_tokens,
            context_in_embedding=self.settings.index.context_in_embedding,
            sentence_vectors=self.settings.answer.sentence_vectors == "late",
            max_bytes=int(self.settings.corpus.max_file_mb * 1024 * 1024),
        )

    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        *,
        prune: bool = False,
        rebuild: bool = False,
        progress: Progress | None = None,
        on_calibrate: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Index `paths` (default: the corpus folder) under the data dir's write lock."""
        targets = list(paths or [self.corpus_path()])
        for target in targets:
            if not target.exists():
                raise DossierError(f"no such file or folder: {target}")
        with self.write_lock():
            ingestor = self.ingestor(rebuild=rebuild)
            if on_calibrate is not None:
                ingestor.embedder.on_calibrate = on_calibrate
            root = self._root_for(targets[0])
            return ingestor.run(targets, prune=prune, corpus_root=root, progress=progress)

    def _root_for(self, target: Path) -> Path | None:
        """What ids are relative to: the corpus folder for what lies in it (a file given
        alone keeps the id a folder ingest gives it), else the folder given."""
        corpus = self.corpus_path()
        if target.absolute().is_relative_to(corpus.absolute()):
            return corpus
        return target if target.is_dir() else None

    def add_document(self, file_name: str | None, data: bytes,
                     mime_type: str | None = None) -> AddedDocument:
        """Save a document among the uploads under a name of ours and index it. An upload
        of the same name is replaced (only an upload: a corpus file never is); a document
        that could not be indexed is removed again, and the upload it replaced restored."""
        extension = document_extension(file_name, mime_type)
        if extension is None:
            raise UnsupportedDocument(f"cannot read documents like {file_name!r}")
        corpus = self.corpus_path()
        with self.write_lock():
            saved = save_document(self.uploads_path(), file_name, extension, data)
            try:
                report = self.ingestor().run([saved.path], corpus_root=corpus)
            except BaseException:
                saved.undo()
                raise
            kept = not report.skipped
            if kept:
                saved.commit()
            else:
                saved.undo()
        from index.loaders import article_id

        name = saved.path.name
        log.info("document %s saved as %s: %s", log_value(file_name), name, report.to_json())
        return AddedDocument(name, article_id(saved.path, corpus), report, kept,
                             replaced=saved.replaced)

    def uploads(self) -> list[Upload]:
        """The documents added through a front end, by name."""
        from index.loaders import article_id

        folder, corpus = self.uploads_path(), self.corpus_path()
        if not folder.is_dir():
            return []
        return [Upload(path.name, article_id(path, corpus), path.stat().st_size)
                for path in sorted(folder.iterdir(), key=lambda p: p.name)
                if path.is_file() and path.suffix.lower() in DOCUMENT_EXTENSIONS]

    def remove_upload(self, name: str) -> Upload:
        """Delete an upload and its article from the index."""
        with self.write_lock():
            upload = next((u for u in self.uploads() if u.name == name), None)
            if upload is None:
                raise DossierError(f"no upload named {name!r}")
            (self.uploads_path() / upload.name).unlink()
            with self.store.write() as write:
                if upload.article_id in self.store.records():
                    write.remove_article(upload.article_id)
        log.info("upload %s removed", log_value(name))
        return upload

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer per data dir: a second ingest refuses instead of interleaving writes."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.settings.data_dir / "ingest.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise IngestLocked(
                f"another `dossier ingest` is writing to {self.settings.data_dir}; "
                "try again when it has finished"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @cached_property
    def retriever(self) -> HybridRetriever:
        from bot.retrieval import HybridRetriever

        return HybridRetriever.from_settings(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def chat_model(self) -> BaseChatModel | None:
        if self.settings.llm.provider == "none":
            return None  # extractive: LangChain's chat-model modules are never imported
        from bot.llm import make_chat_model

        return make_chat_model(self.settings.llm)

    @cached_property
    def answerer(self) -> Answerer:
        from bot.answer import Answerer
        from bot.sentence_vectors import SentenceVectors

        chat_model = self.chat_model
        if chat_model is not None:
            from bot.llm import output_mode
        return Answerer(
            self.retriever,
            self.embedder,
            self.settings.answer,
            reader_settings=self.settings.reader,
            chat_model=chat_model,
            llm_timeout_s=self.settings.llm.timeout_s,
            llm_output=output_mode(self.settings.llm) if chat_model is not None else "text",
            sentence_vectors=SentenceVectors(
                self.store, self.embedder, self.settings.answer.sentence_vectors,
                context_in_embedding=self.settings.index.context_in_embedding,
            ),
        )

    def conversation(self) -> Conversation:
        from bot.chat import Conversation

        return Conversation(self.answerer, history_turns=self.settings.chat.history_turns)

    def corpus_path(self) -> Path:
        return self.settings.corpus.path

    def uploads_path(self) -> Path:
        return self.corpus_path() / UPLOADS_FOLDER
