"""The embedding model as OpenVINO int8, calibrated on the user's own passages, saved to disk.

On this CPU (AVX512-VNNI) it embeds 2.2-2.5x as fast as torch bf16 and its vectors agree
with fp32 to a cosine of 0.9975 on average (BENCHMARKS.md), provided it is calibrated on
text like the text it will embed: passages of the corpus. So the model is built once per
data dir from the first passages an ingest embeds, saved, and loaded by every later
ingest, chat or bot on that data dir.

A corpus too small to calibrate on gets a plain (not quantised) OpenVINO copy instead, made
once at its first ingest: either way a question is embedded without importing torch, whose
import alone costs seconds.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index import compiled_cache
from index.errors import DossierError
from index.model_files import ModelFiles
from index.models import Span

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
INFO_FILE = "dossier-int8.json"
# The plain copy lives in this sub-folder of the int8 folder, so the two never mix.
PLAIN_FOLDER = "plain"
# Calibration passages (bench/int8_calibration.py): 128 news passages give vectors as close
# to fp32 as 256 or 512 do (min cosine 0.995) in a half or less of the time; one article's
# 16 paragraphs were visibly worse (min 0.955), so smaller first ingests wait, on torch.
MIN_CALIBRATION_PASSAGES = 128
MAX_CALIBRATION_PASSAGES = 128
# NNCF keeps every layer's activations of a calibration batch: batches of 16 passages
# peaked at 1.6 GB, of 4 at 0.73 GB, with vectors as close to fp32 (BENCHMARKS.md).
CALIBRATION_BATCH = 4


class Int8Unavailable(DossierError):
    """`index.precision = "int8"` without OpenVINO and NNCF installed."""


def require_openvino() -> Any:
    _no_usage_reports()  # before OpenVINO is imported: importing it may already report
    try:
        import openvino
    except ImportError:
        raise Int8Unavailable(
            'index.precision = "int8" needs OpenVINO: pip install openvino nncf'
        ) from None
    return openvino


def _no_usage_reports() -> None:
    """Dossier stays offline: OpenVINO's model converter and NNCF send usage events to Google
    Analytics unless a file in the user's home says no, each from a forked process waited
    on for up to 3 s. Consent is declined and sending disabled, for this process only."""
    try:
        from openvino_telemetry.backend.backend_ga import GABackend
        from openvino_telemetry.backend.backend_ga4 import GA4Backend
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package, nothing to send
        return

    def declined(*_args: Any, **_kwargs: Any) -> ConsentCheckResult:
        return ConsentCheckResult.DECLINED

    def not_sent(*_args: Any, **_kwargs: Any) -> None:
        return None

    OptInChecker.check = declined
    for backend in (GABackend, GA4Backend):
        backend.send = not_sent


_CORE: list[Any] = []
_CORE_LOCK = threading.Lock()


def _core(ov: Any) -> Any:
    """One OpenVINO Core for the process, never freed: freeing one unloads the CPU plugin,
    and a SIGTERM after that (the bot's way to stop) crashed the process."""
    with _CORE_LOCK:
        if not _CORE:
            _CORE.append(ov.Core())
        return _CORE[0]


def keep_compiled_in(folder: Path | None) -> None:
    """Every later compile in this process reads and writes its compiled blob in `folder`
    (index/compiled_cache.py): a new process then loads the model instead of compiling it."""
    if compiled_cache.enable(_core(require_openvino()), folder):
        compiled_cache.prune(folder)


# Batches (an ingest's passages, a question's candidate sentences): the throughput hint
# gives each core a stream, and bf16 computes what stays in floating point where the CPU
# has it.
_BATCH_CONFIG = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "THROUGHPUT"}
# One question: the latency hint puts both cores on it, f32 was faster than bf16 for one
# short text (6.1 against 7.5 ms) and is right at every width, and padding to a multiple
# of 16 makes widths recur: a width seen before skips OpenVINO's re-planning for a new
# shape (bench/question_embedding.py).
_QUESTION_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
_QUESTION_WIDTH_STEP = 16


class _Compiled:
    """One compile of the model for the CPU, with its infer requests."""

    def __init__(self, compiled: Any) -> None:
        # True when OpenVINO loaded a blob an earlier process compiled (keep_compiled_in).
        self.loaded_from_cache = bool(compiled.get_property("LOADED_FROM_CACHE"))
        self.requests = [
            compiled.create_infer_request()
            for _ in range(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        ]
        # The requests serve every thread, one encode at a time.
        self.lock = threading.Lock()


class Int8Encoder:
    """Mean-pooled, normalised sentence vectors from an OpenVINO model of the encoder (int8,
    or the plain copy: `quantized` says which).

    Pooling and normalising are done here, as sentence-transformers does them for
    all-MiniLM-L6-v2; the tokenizer is read from the model's folder (tokenizer.json).
    The model is compiled twice, each when first needed: for batches and for single
    questions (a cold `dossier ask` compiles, or loads, the question one only).
    """

    def __init__(self, model: Any, files: ModelFiles, *, quantized: bool = True) -> None:
        self._model = model
        self._tokenize = Tokenize(files)
        self._dimension = files.dimension
        self.quantized = quantized
        self._compiled: dict[str, _Compiled] = {}
        self._compile_lock = threading.Lock()

    @property
    def loaded_from_cache(self) -> bool:
        """Whether every compile so far was loaded from a blob an earlier process left."""
        return bool(self._compiled) and all(
            c.loaded_from_cache for c in self._compiled.values()
        )

    def _compiled_for(self, purpose: str) -> _Compiled:
        with self._compile_lock:
            if purpose not in self._compiled:
                config = _QUESTION_CONFIG if purpose == "question" else _BATCH_CONFIG
                self._compiled[purpose] = _Compiled(
                    _core(require_openvino()).compile_model(self._model, "CPU", config)
                )
            return self._compiled[purpose]

    def release(self, purpose: str) -> None:
        """Drop one compile and its infer requests' buffers; made again when next needed."""
        with self._compile_lock:
            compiled = self._compiled.pop(purpose, None)
        if compiled is not None:
            with compiled.lock:  # not while a call still runs on it
                compiled.requests.clear()

    @classmethod
    def load(cls, folder: Path, files: ModelFiles) -> Int8Encoder | None:
        """The model saved in `folder` for this source model; None if there is none or it
        cannot be read (then torch embeds, and the next ingest builds it anew)."""
        info = _read_info(folder)
        if info is None or info.get("source") != files.fingerprint:
            return None
        ov = require_openvino()
        try:
            # Reading checks the weights file against the graph: a damaged one fails here.
            model = _core(ov).read_model(str(folder / MODEL_FILE))
        except RuntimeError as exc:  # what OpenVINO raises for a damaged model file
            log.warning("the int8 model in %s cannot be read, torch embeds instead: %s",
                        folder, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        return cls(model, files, quantized=not info.get("plain", False))

    @classmethod
    def build(
        cls, source: SentenceTransformer, files: ModelFiles, calibration: Sequence[str],
        folder: Path,
    ) -> Int8Encoder:
        """Convert `source` to OpenVINO, quantise it to int8 on `calibration`, save it.
        (An ingest builds it in a child process instead: index/model_build.py.)"""
        return cls(save_int8(source, files, calibration, folder), files)

    @classmethod
    def convert(cls, source: SentenceTransformer, files: ModelFiles, folder: Path) -> Int8Encoder:
        """A plain OpenVINO copy of `source` (no calibration: any text will do), saved."""
        save_plain(source, files, folder)
        # Compiled from what was saved, so this process and later ones embed alike.
        saved = _core(require_openvino()).read_model(str(folder / MODEL_FILE))
        return cls(saved, files, quantized=False)

    def encode_question(self, text: str) -> Any:
        """The unit vector of one short text (a question), on both cores at once."""
        compiled = self._compiled_for("question")
        features = self._tokenize.padded(
            self._tokenize.encodings([text]), step=_QUESTION_WIDTH_STEP
        )
        vector = np.zeros((1, self._dimension), dtype=np.float32)
        with compiled.lock:
            request = compiled.requests[0]
            request.start_async(features)
            _pool_into(vector, request, np.arange(1), features["attention_mask"])
        return vector[0]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """A float32 matrix of unit vectors, one row per text.

        Texts are batched by their count of word pieces, longest first, so that a batch
        pads little: in batches of 64 news passages sorted by characters, as
        sentence-transformers does, 18 % more word pieces are computed than there are;
        sorted by word pieces, 7 % (2 % in the ingest's pools of 2,048; 11 % once long
        batches are padded to fixed widths, `fixed_width`).
        """
        return self.encode_with_spans(texts, None, batch_size)[0]

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None,
        batch_size: int = 64,
    ) -> tuple[Any, list[Any]]:
        """Like `encode`, and from the same forward pass a unit vector for each character
        span `spans[i]` of `texts[i]` (late chunking: its tokens, read in the context of
        the whole text, mean-pooled): a passage's sentences cost no model call of their own.
        """
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        span_vectors = [
            np.zeros((len(spans[i]), self._dimension), dtype=np.float32)
            for i in range(len(texts))
        ] if spans is not None else []
        encodings = self._tokenize.encodings(texts)
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        compiled = self._compiled_for("batch")
        requests = compiled.requests
        # A few texts (a question's candidate sentences) are split over every stream: one
        # batch would run on one core while the other idles.
        full_batch = batch_size
        batch_size = max(1, min(batch_size, -(-len(texts) // len(requests))))
        running: list[tuple[Any, Any, Any]] = []

        def pool(request: Any, rows: Any, attention_mask: Any) -> None:
            hidden = _pool_into(vectors, request, rows, attention_mask)
            if spans is not None:
                for at, row in enumerate(rows):
                    span_vectors[row] = _pool_spans(
                        hidden[at], encodings[row].offsets, spans[row], vectors[row]
                    )

        with compiled.lock:
            for number, at in enumerate(range(0, len(texts), batch_size)):
                request = requests[number % len(requests)]
                if len(running) == len(requests):
                    pool(*running.pop(0))
                rows = order[at : at + batch_size]
                # Padded with copies of its last text, whose outputs are never read.
                batch = [encodings[i] for i in rows]
                batch += batch[-1:] * (fixed_rows(len(batch), full_batch) - len(batch))
                features = self._tokenize.padded(batch, fixed=True)
                request.start_async(features)
                running.append((request, rows, features["attention_mask"]))
            while running:
                pool(*running.pop(0))
        return vectors, span_vectors


def _pool_into(vectors: Any, request: Any, rows: Any, attention_mask: Any) -> Any:
    """Wait for a batch, mean-pool it over its real tokens, normalise, write its rows;
    return its token vectors (those of its padding rows, `fixed_rows`, left out)."""
    request.wait()
    hidden = request.get_output_tensor(0).data[: len(rows)]
    mask = attention_mask[: len(rows), :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    vectors[rows] = pooled / np.maximum(norms, 1e-12)
    return hidden


def _pool_spans(hidden: Any, offsets: Sequence[Span], spans: Sequence[Span],
                whole: Any) -> Any:
    """Unit vectors of character spans from one text's token vectors: each the mean of
    the tokens that overlap it (special tokens, at (0, 0), never do). A span the model
    did not read (cut off by its window) gets the whole text's vector."""
    if not spans:
        return np.zeros((0, whole.shape[0]), dtype=np.float32)
    token = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    wanted = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    real = token[:, 1] > token[:, 0]
    overlaps = ((token[None, :, 0] < wanted[:, None, 1])
                & (token[None, :, 1] > wanted[:, None, 0]) & real[None, :])
    weights = overlaps.astype(np.float32)
    counts = weights.sum(axis=1, keepdims=True)
    pooled = weights @ hidden[: len(token)].astype(np.float32)
    pooled = np.where(counts > 0, pooled / np.maximum(counts, 1.0), whole[None, :])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def save_int8(
    source: SentenceTransformer, files: ModelFiles, calibration: Sequence[str], folder: Path
) -> Any:
    """Convert `source` to OpenVINO, quantise it to int8 on `calibration`, save it in
    `folder`; return the model. (In one process: an ingest splits the two steps over two,
    `save_fp32` and `quantize_saved`, so that torch and NNCF never share one's memory.)"""
    ov = require_openvino()
    texts = calibration_texts(calibration)
    return _quantize_and_save(ov, _convert_traced_on(ov, source, files, texts), files, texts,
                              folder)


def save_fp32(
    source: SentenceTransformer, files: ModelFiles, calibration: Sequence[str], folder: Path
) -> None:
    """`source` converted to OpenVINO at full precision and saved in `folder`, traced on the
    first calibration batch as `save_int8` traces it: what `quantize_saved` reads."""
    ov = require_openvino()
    model = _convert_traced_on(ov, source, files, calibration_texts(calibration))
    _save(ov, model, folder, compress_to_fp16=False, info={"source": files.fingerprint})


def quantize_saved(
    fp32_folder: Path, files: ModelFiles, calibration: Sequence[str], folder: Path
) -> Any:
    """Quantise the model `save_fp32` left in `fp32_folder` to int8 on `calibration`, save
    it in `folder`; return it. Needs no torch: the process that runs it never loads it."""
    ov = require_openvino()
    model = _core(ov).read_model(str(fp32_folder / MODEL_FILE))
    return _quantize_and_save(ov, model, files, calibration_texts(calibration), folder)


def calibration_texts(calibration: Sequence[str]) -> list[str]:
    """The passages a model is calibrated on: the first MAX_CALIBRATION_PASSAGES."""
    return list(calibration[:MAX_CALIBRATION_PASSAGES])


def _transformer(source: SentenceTransformer) -> Any:
    transformer: Any = source[0].auto_model
    return transformer.eval()


def _convert_traced_on(ov: Any, source: SentenceTransformer, files: ModelFiles,
                       texts: Sequence[str]) -> Any:
    """`source` converted to OpenVINO at full precision, traced on the first calibration
    batch."""
    with _quietly():
        return ov.convert_model(_transformer(source),
                                example_input=Tokenize(files)(texts[:CALIBRATION_BATCH]))


def _quantize_and_save(
    ov: Any, model: Any, files: ModelFiles, texts: Sequence[str], folder: Path
) -> Any:
    import nncf

    tokenize = Tokenize(files)
    batches = [
        tokenize(texts[at : at + CALIBRATION_BATCH])
        for at in range(0, len(texts), CALIBRATION_BATCH)
    ]
    with _quietly():
        # NNCF's transformer preset: SmoothQuant first moves activation outliers into the
        # weights, then the int8 ranges are set from the calibration batches.
        model = nncf.quantize(
            model,
            nncf.Dataset(batches),
            subset_size=len(batches),
            model_type=nncf.ModelType.TRANSFORMER,
        )
    _save(ov, model, folder, compress_to_fp16=False,
          info={"source": files.fingerprint, "calibration_passages": len(texts)})
    return model


def save_plain(source: SentenceTransformer, files: ModelFiles, folder: Path) -> None:
    """A plain OpenVINO copy of `source` (no calibration: any text will do), saved in
    `folder`."""
    ov = require_openvino()
    example = Tokenize(files)(["An example sentence to trace the model with."])
    with _quietly():
        model = ov.convert_model(_transformer(source), example_input=example)
    # fp16 weights on disk (half the size); the CPU computes in bf16 or fp32 anyway.
    _save(ov, model, folder, compress_to_fp16=True,
          info={"source": files.fingerprint, "plain": True})


def _save(ov: Any, model: Any, folder: Path, *, compress_to_fp16: bool,
          info: dict[str, Any]) -> None:
    """Save a model and its info file; a half-saved model is never loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / ("partial-" + MODEL_FILE)
    ov.save_model(model, str(partial), compress_to_fp16=compress_to_fp16)
    # Renamed into place, the info file written last.
    partial.rename(folder / MODEL_FILE)
    partial.with_suffix(".bin").rename((folder / MODEL_FILE).with_suffix(".bin"))
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


# OpenVINO's CPU plugin keeps buffers and kernels for each input shape it has run, and
# never lets them go: an ingest's memory grew by 25-40 MB a pool of 2,048 passages while
# batches of short texts kept their exact width and a pool's last batch its own number of
# rows (BENCHMARKS.md, "Shapes"). So every batch takes one of a few shapes: its width is
# padded to a multiple of 16 up to 64 word pieces, then of 32 (at most 10 widths), and its
# rows to a power of two (at most 6 counts).
_SHORT_WIDTH_STEP, _SHORT_UP_TO = 16, 64
_WIDTH_STEP = 32


# One width is never run: at exactly 32 word pieces, OpenVINO 2026.4's bf16 CPU kernels
# give wrong vectors (a cosine of 0.78-0.93 to f32 at every batch size, while 31 and 33
# agree to 0.999: bench/question_embedding.py). A batch that wide is padded to 33. (This,
# not padding as such, is what moved short questions padded to 32 in bench/batch_widths.py.)
_BROKEN_BF16_WIDTH = 32


def fixed_width(longest: int, window: int) -> int:
    """The width a batch whose longest text has `longest` word pieces is padded to: the
    next multiple of 16 up to 64, then of 32, never past the model's window."""
    return padded_width(longest, _SHORT_WIDTH_STEP if longest <= _SHORT_UP_TO else _WIDTH_STEP,
                        window)


def padded_width(longest: int, step: int, window: int) -> int:
    """`longest` rounded up to a multiple of `step`, never past the model's window."""
    return min(-(-longest // step) * step, max(window, longest))


def fixed_rows(rows: int, batch_size: int) -> int:
    """The rows a batch of `rows` texts is run with: the next power of two, never more
    than a full batch."""
    return min(1 << (rows - 1).bit_length(), max(batch_size, rows))


class Tokenize:
    """Texts to the model's padded int64 inputs, straight from the fast tokenizer read from
    the model's tokenizer.json (in a profile, the transformers wrapper spent a third of its
    time building arrays; and it needs torch's world of imports)."""

    def __init__(self, files: ModelFiles) -> None:
        self._backend = files.tokenizer(max_tokens=files.max_tokens)
        self._pad_id = files.pad_id
        self._max_tokens = files.max_tokens

    def encodings(self, texts: Sequence[str]) -> list[Any]:
        """Each text's word pieces, special tokens included, truncated, not padded."""
        return list(self._backend.encode_batch(list(texts)))

    def padded(self, encodings: Sequence[Any], *, fixed: bool = False,
               step: int = 1) -> dict[str, Any]:
        """One batch: ids, attention mask and token types, padded to its longest text, or
        with `fixed` to the next of a few fixed widths (`fixed_width`), or to the next
        multiple of `step`, never past the model's window."""
        width = max(len(e.ids) for e in encodings)
        if fixed:
            width = fixed_width(width, self._max_tokens)
        elif step > 1:
            width = padded_width(width, step, self._max_tokens)
        if width == _BROKEN_BF16_WIDTH:
            width += 1
        features = {
            "input_ids": np.full((len(encodings), width), self._pad_id, dtype=np.int64),
            "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
            "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            features["input_ids"][row, :n] = encoding.ids
            features["attention_mask"][row, :n] = encoding.attention_mask
            features["token_type_ids"][row, :n] = encoding.type_ids
        return features

    def __call__(self, texts: Sequence[str]) -> dict[str, Any]:
        return self.padded(self.encodings(texts))


def is_saved(folder: Path, files: ModelFiles) -> bool:
    """Whether `folder` holds a whole saved model (its info file written last) of `files`."""
    info = _read_info(folder)
    return info is not None and info.get("source") == files.fingerprint


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

    # Only where torch's side is loaded already: quantising runs in a process without it.
    transformers_logging: Any = sys.modules.get("transformers.utils.logging")
    console = rich.get_console()
    was_quiet = console.quiet
    was_verbosity = transformers_logging.get_verbosity() if transformers_logging else None
    nncf_log = logging.getLogger("nncf")
    was_level = nncf_log.level
    console.quiet = True
    if transformers_logging is not None:
        transformers_logging.set_verbosity_error()
    nncf_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        console.quiet = was_quiet
        if transformers_logging is not None:
            transformers_logging.set_verbosity(was_verbosity)
        nncf_log.setLevel(was_level)
