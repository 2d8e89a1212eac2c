"""One question's embedding: the batch compile (what embedded questions before) against the
question compile (index/int8.py `Int8Encoder.encode_question`), and what padding does.

On the data dir's OpenVINO model (the int8 one when it has one), this reports:
1. per dev question, asked the first time, alternating the two paths question by question
   (each round in the dev file's order, so widths change from one question to the next
   as they do in a bot): p50/p90/p99 ms of the whole call (tokenize, infer, pool);
2. how far each path's vector is from the batch path's (cosine, mean and min);
3. for each inference precision (bf16, f32), how far padding a question to a multiple of
   16 or 32 moves its vector from its exact-width one (cosine, mean and min).

Usage: python -m bench.question_embedding --data-dir DIR [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchlib import REALTIMEQA_DEV, markdown_table, read_jsonl, report, timed_ms
from index.embeddings import SentenceEmbeddings
from index.int8 import MODEL_FILE, Int8Encoder, Tokenize, _core, require_openvino


def path_timings(encoder: Int8Encoder, questions: list[str], rounds: int) -> list[dict[str, Any]]:
    paths = {
        "batch compile (before)": lambda text: encoder.encode([text])[0],
        "question compile (now)": encoder.encode_question,
    }
    for embed in paths.values():
        embed("warm up")  # compile (or load) before timing
    reference = encoder.encode(questions)
    times: dict[str, list[float]] = {name: [] for name in paths}
    vectors: dict[str, list[Any]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for question in questions:
            for name, embed in paths.items():
                started = time.perf_counter()
                vector = embed(question)
                times[name].append((time.perf_counter() - started) * 1000)
                if round_ == 0:
                    vectors[name].append(vector)
    rows = []
    for name in paths:
        cosines = np.sum(np.stack(vectors[name]) * reference, axis=1)
        timing = timed_ms(times[name])
        rows.append({"path": name, "calls": len(times[name]), "p50_ms": timing["p50_ms"],
                     "p90_ms": round(float(np.percentile(times[name], 90)), 2),
                     "p99_ms": timing["p99_ms"],
                     "cosine_to_batch_mean": round(float(cosines.mean()), 5),
                     "cosine_to_batch_min": round(float(cosines.min()), 5)})
    return rows


def padding_effect(folder: Path, files: Any, questions: list[str]) -> list[dict[str, Any]]:
    """Cosine of each question's vector padded to a step against its exact-width vector."""
    ov = require_openvino()
    model = _core(ov).read_model(str(folder / MODEL_FILE))
    tokenize = Tokenize(files)
    encodings = [tokenize.encodings([q]) for q in questions]
    rows = []
    for precision in ("bf16", "f32"):
        compiled = _core(ov).compile_model(
            model, "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        )
        request = compiled.create_infer_request()

        def pooled(features: dict[str, Any], request: Any = request) -> Any:
            request.infer(features)
            hidden = request.get_output_tensor(0).data
            mask = features["attention_mask"][..., None].astype(np.float32)
            vector = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
            return vector[0] / np.linalg.norm(vector[0])

        exact = np.stack([pooled(tokenize.padded(e)) for e in encodings])
        for step in (16, 32):
            padded = np.stack([pooled(tokenize.padded(e, step=step)) for e in encodings])
            cosines = np.sum(padded * exact, axis=1)
            rows.append({"precision": precision, "padded_to_multiple_of": step,
                         "cosine_mean": round(float(cosines.mean()), 5),
                         "cosine_min": round(float(cosines.min()), 5)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    embedder = SentenceEmbeddings("", precision="auto", int8_dir=args.data_dir / "int8")
    encoder = embedder.openvino
    if encoder is None or embedder.files is None:
        raise SystemExit(f"{args.data_dir} holds no OpenVINO model")
    folder = args.data_dir / "int8" if encoder.quantized else args.data_dir / "int8" / "plain"
    questions = [row["question"] for row in read_jsonl(REALTIMEQA_DEV)]
    timings = path_timings(encoder, questions, args.rounds)
    padding = padding_effect(folder, embedder.files, questions)
    report("question-embedding", {"backend": embedder.backend, "paths": timings,
                                  "padding": padding},
           markdown_table(timings, list(timings[0]))
           + "\n\n" + markdown_table(padding, list(padding[0])))


if __name__ == "__main__":
    main()
