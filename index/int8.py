"""The embedding model as OpenVINO int8, calibrated on the user's own passages, saved to disk.

On a CPU with AVX512-VNNI this embeds about twice as fast as torch bf16 and its vectors
agree with fp32 to a cosine of 0.998 (BENCHMARKS.md), provided it is calibrated on text
like the text it will embed: a few hundred of the corpus's passages. So the model is
built once per data dir from the first passages an ingest embeds, saved, and loaded by
every later ingest, chat or bot on that data dir.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import DossierError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
INFO_FILE = "dossier-int8.json"
# Calibration: fewer passages than this give visibly worse vectors (a single article's
# paragraphs: min cosine 0.955 against 0.995), more than the maximum gain nothing.
MIN_CALIBRATION_PASSAGES = 256
MAX_CALIBRATION_PASSAGES = 512
_CALIBRATION_BATCH = 16
# Where the model's input names come from: BERT-style encoders take all three.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Int8Unavailable(DossierError):
    """`index.precision = "int8"` without OpenVINO and NNCF installed."""


def _require_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise Int8Unavailable(
            'index.precision = "int8" needs OpenVINO: pip install openvino nncf'
        ) from None
    return openvino


class Int8Encoder:
    """Mean-pooled, normalised sentence vectors from an OpenVINO int8 model of the encoder.

    Pooling and normalising are done here, as sentence-transformers does them for
    all-MiniLM-L6-v2; the tokenizer is the sentence-transformers model's own.
    """

    def __init__(self, compiled: Any, tokenizer: Any, max_tokens: int, dimension: int) -> None:
        self._compiled = compiled
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._dimension = dimension
        # One compiled model serves every thread; its implicit infer request does not.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, source: SentenceTransformer, name: str) -> Int8Encoder | None:
        """The int8 model saved in `folder` for this source model, or None if there is none."""
        info = _read_info(folder)
        if info is None or info.get("source") != _fingerprint(source, name):
            return None
        ov = _require_openvino()
        return cls._compile(ov, ov.Core().read_model(str(folder / MODEL_FILE)), source)

    @classmethod
    def build(
        cls, source: SentenceTransformer, name: str, calibration: Sequence[str], folder: Path
    ) -> Int8Encoder:
        """Convert `source` to OpenVINO, quantise it to int8 on `calibration`, save it."""
        ov = _require_openvino()
        import nncf

        tokenizer, max_tokens = source.tokenizer, _max_tokens(source)
        texts = list(calibration[:MAX_CALIBRATION_PASSAGES])
        batches = [
            _features(tokenizer, texts[at : at + _CALIBRATION_BATCH], max_tokens)
            for at in range(0, len(texts), _CALIBRATION_BATCH)
        ]
        transformer: Any = source[0].auto_model
        with _quietly():
            model = ov.convert_model(transformer.eval(), example_input=batches[0])
            # SmoothQuant (NNCF's default for transformers) moves activation outliers into
            # the weights: without it, int8 MiniLM loses several points of cosine.
            model = nncf.quantize(
                model,
                nncf.Dataset(batches),
                subset_size=len(batches),
                model_type=nncf.ModelType.TRANSFORMER,
            )
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / ("partial-" + MODEL_FILE)
        ov.save_model(model, str(partial), compress_to_fp16=False)
        # Written last and renamed into place: a half-saved model is never loaded.
        partial.rename(folder / MODEL_FILE)
        partial.with_suffix(".bin").rename((folder / MODEL_FILE).with_suffix(".bin"))
        info = {"source": _fingerprint(source, name), "calibration_passages": len(texts)}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        return cls._compile(ov, model, source)

    @classmethod
    def _compile(cls, ov: Any, model: Any, source: SentenceTransformer) -> Int8Encoder:
        # bf16 for what stays in floating point (where the CPU has it), one stream over all
        # cores: the throughput hint splits the two cores and was slower here.
        compiled = ov.Core().compile_model(
            model,
            "CPU",
            {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY"},
        )
        dimension = int(source.get_embedding_dimension() or 0)
        return cls(compiled, source.tokenizer, _max_tokens(source), dimension)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """A float32 matrix of unit vectors, one row per text, batched by length."""
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        # Longest first, as sentence-transformers does: each batch pads to similar lengths.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for at in range(0, len(texts), batch_size):
            rows = order[at : at + batch_size]
            features = _features(self._tokenizer, [texts[i] for i in rows], self._max_tokens)
            with self._lock:
                hidden = self._compiled(features)[0]
            mask = features["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            vectors[rows] = pooled / np.maximum(norms, 1e-12)
        return vectors


def _features(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    got = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="np"
    )
    return {name: got[name] for name in _INPUTS}


def _max_tokens(source: SentenceTransformer) -> int:
    return int(source.max_seq_length or 256)


def _fingerprint(source: SentenceTransformer, name: str) -> str:
    """Which model the int8 model was made from: a changed model means recalibrating."""
    transformer: Any = source[0].auto_model
    config = transformer.config
    return f"{name}|{config.hidden_size}|{config.num_hidden_layers}|{config.vocab_size}"


def _read_info(folder: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((folder / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (folder / MODEL_FILE).exists() or not isinstance(info, dict):
        return None
    return info


@contextmanager
def _quietly() -> Iterator[None]:
    """Silence conversion and calibration: an ingest reports its own progress.

    Tracing warns about constants (harmless for a fixed graph), transformers about loss
    settings of no use here, and NNCF draws progress bars on rich's global console, which
    would fight the ingest's own bar on the terminal.
    """
    import rich
    from transformers.utils import logging as transformers_logging

    console = rich.get_console()
    was_quiet, was_verbosity = console.quiet, transformers_logging.get_verbosity()
    nncf_log = logging.getLogger("nncf")
    was_level = nncf_log.level
    console.quiet = True
    transformers_logging.set_verbosity_error()
    nncf_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        console.quiet = was_quiet
        transformers_logging.set_verbosity(was_verbosity)
        nncf_log.setLevel(was_level)
