"""Embedding speed and agreement with fp32 for each way of running the model, on real passages.

torch fp32, torch bf16 autocast (what `index.precision = "auto"` picks on this CPU), ONNX
Runtime int8 (dynamic quantisation for AVX512-VNNI), OpenVINO bf16, and OpenVINO int8
(NNCF static quantisation with SmoothQuant, which needs calibration passages: once 512
benchmark passages other than the measured ones, once the seed article's paragraphs
alone). All exported here from the bundled weights, offline. The same benchmark passages
(as the index embeds them: title and section context included) go through each in turn,
several alternating rounds, so machine noise hits all alike. Agreement is the cosine
between each passage's vector and its fp32 vector.

Usage: python -m bench.precision [--passages 512] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchlib import REALTIMEQA_ARTICLES, ROOT, markdown_table, report
from index.articles_jsonl import iter_jsonl_articles
from index.chunking import chunk_article, embedding_texts
from index.embeddings import SentenceEmbeddings, bundled_model_path
from index.models import Article

Encoder = Callable[[list[str]], Any]


def onnx_int8(workdir: Path) -> Encoder:
    """The bundled model exported to ONNX and quantised to int8 for AVX512-VNNI."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    exported = SentenceTransformer(bundled_model_path(), backend="onnx", device="cpu")
    exported.save(str(workdir))
    export_dynamic_quantized_onnx_model(exported, "avx512_vnni", str(workdir))
    model = SentenceTransformer(
        str(workdir), backend="onnx", device="cpu",
        model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"},
    )
    return lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True)


class OpenVINOEncoder:
    """The bundled model converted to OpenVINO; mean pooling and normalising as ST does."""

    def __init__(self, hint: str, calibration: list[str] | None = None) -> None:
        import openvino as ov

        source = SentenceEmbeddings(precision="fp32").model
        self.tokenizer = source.tokenizer
        example = self._features(["a short example", "another"])
        transformer: Any = source[0].auto_model
        model = ov.convert_model(transformer.eval(), example_input=example)
        if calibration:
            import nncf

            batches = [self._features(calibration[i : i + 16])
                       for i in range(0, len(calibration), 16)]
            model = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                                  model_type=nncf.ModelType.TRANSFORMER)
        # LATENCY: one stream over both cores; THROUGHPUT splits them and was slower here.
        self.compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})

    def _features(self, texts: list[str]) -> dict[str, Any]:
        got = self.tokenizer(texts, padding=True, truncation=True, max_length=256,
                             return_tensors="np")
        return {k: got[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def __call__(self, texts: list[str], batch_size: int = 64) -> Any:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts])  # length buckets, as ST does
        for at in range(0, len(texts), batch_size):
            rows = order[at : at + batch_size]
            features = self._features([texts[i] for i in rows])
            hidden = self.compiled(features)[0]
            mask = features["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def seed_paragraphs() -> list[str]:
    text = (ROOT / "corpus" / "mexico-canada-critical-minerals.txt").read_text()
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.split()) > 5]
    return paragraphs + [" ".join(paragraphs[i : i + 3]) for i in range(0, len(paragraphs), 3)]


def benchmark_passages(count: int) -> list[str]:
    """The first `count` passages of the benchmark corpus, as they are embedded."""
    counter = SentenceEmbeddings(precision="fp32")
    texts: list[str] = []
    for article in iter_jsonl_articles(REALTIMEQA_ARTICLES, "bench", max_bytes=2**30):
        if not isinstance(article, Article):
            continue
        chunks = chunk_article(article, counter.count_tokens)
        texts += embedding_texts([(article, c) for c in chunks], counter.count_tokens)
        if len(texts) >= count:
            return texts[:count]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    passages = benchmark_passages(args.passages + 512)
    texts, held_out = passages[: args.passages], passages[args.passages :]
    with tempfile.TemporaryDirectory(prefix="dossier-onnx-") as workdir:
        models: dict[str, Encoder] = {
            "torch fp32": SentenceEmbeddings(precision="fp32").encode,
            "torch bf16 autocast": SentenceEmbeddings(precision="bf16").encode,
            "ONNX Runtime int8 (VNNI)": onnx_int8(Path(workdir)),
            "OpenVINO bf16": OpenVINOEncoder("bf16"),
            "OpenVINO int8, calibrated on 512 news passages": OpenVINOEncoder("bf16", held_out),
            "OpenVINO int8, calibrated on the seed article": OpenVINOEncoder(
                "bf16", seed_paragraphs()),
        }
        for encode in models.values():
            encode(texts[:64])  # load, and let each backend pick its kernels
        seconds: dict[str, list[float]] = {name: [] for name in models}
        vectors: dict[str, Any] = {}
        for _ in range(args.rounds):
            for name, encode in models.items():
                started = time.perf_counter()
                vectors[name] = encode(texts)
                seconds[name].append(time.perf_counter() - started)
    fp32 = "torch fp32"
    rows = []
    for name in models:
        best = min(seconds[name])
        cosine = np.sum(vectors[name] * vectors[fp32], axis=1)
        rows.append({
            "model run by": name,
            "passages/s (best round)": round(len(texts) / best, 1),
            "speed vs fp32": round(min(seconds[fp32]) / best, 2),
            "cosine to fp32 mean": round(float(cosine.mean()), 5),
            "cosine to fp32 min": round(float(cosine.min()), 5),
        })
    report("precision", {"passages": len(texts), "rounds": args.rounds, "rows": rows,
                         "seconds": seconds},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
