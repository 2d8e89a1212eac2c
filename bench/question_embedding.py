"""One question's embedding: the batch compile (what embedded questions before) against the
question compile (index/int8.py `Int8Encoder.encode_question`), and what padding does.

On the data dir's OpenVINO model (the int8 one when it has one), this reports:
1. per dev question, asked the first time, alternating the two paths question by question
   (each round in the dev file's order, so widths change from one question to the next
   as they do in a bot): p50/p90/p99 ms of the whole call (tokenize, infer, pool);
2. how far each path's vector is from the batch path's (cosine, mean and min);
3. for each inference precision (bf16, f32) and a few widths W, news passages cut to fill
   exactly W word pieces, run at width W, against the same run in f32 with padding: in
   bf16 a text filling exactly 32 is wrong (index/int8.py pads such a batch to 33).

Usage: python -m bench.question_embedding --data-dir DIR [--rounds 3] [--passages 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchlib import REALTIMEQA_DEV, markdown_table, read_jsonl, report, timed_ms
from bench.precision import benchmark_passages
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


def width_effect(folder: Path, files: Any, texts: list[str]) -> list[dict[str, Any]]:
    """For each inference precision and width W: `texts` cut to fill exactly W word pieces,
    run at width W, against the same cut run in f32 padded to W + 16 (f32 vectors do not
    move with padding): cosine mean and min."""
    ov = require_openvino()
    model = _core(ov).read_model(str(folder / MODEL_FILE))
    tokenize = Tokenize(files)
    encodings = tokenize.encodings(texts)
    requests = {
        precision: _core(ov).compile_model(
            model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                           "PERFORMANCE_HINT": "THROUGHPUT"}).create_infer_request()
        for precision in ("bf16", "f32")
    }

    def pooled(precision: str, ids: list[int], width: int) -> Any:
        features = {name: np.zeros((1, width), dtype=np.int64)
                    for name in ("input_ids", "attention_mask", "token_type_ids")}
        features["input_ids"][0, : len(ids)] = ids
        features["attention_mask"][0, : len(ids)] = 1
        request = requests[precision]
        request.infer(features)
        hidden = request.get_output_tensor(0).data[0, : len(ids)]
        vector = hidden.mean(axis=0)
        return vector / np.linalg.norm(vector)

    rows = []
    for width in (16, 24, 31, 32, 33, 48, 64, 96, 128):
        cut = [e.ids[: width - 1] + e.ids[-1:] for e in encodings if len(e.ids) >= width]
        reference = [pooled("f32", ids, width + 16) for ids in cut]
        for precision in ("bf16", "f32"):
            cosines = np.array([float(pooled(precision, ids, width) @ ref)
                                for ids, ref in zip(cut, reference, strict=True)])
            rows.append({"precision": precision, "width": width, "texts": len(cut),
                         "cosine_mean": round(float(cosines.mean()), 5),
                         "cosine_min": round(float(cosines.min()), 5)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passages", type=int, default=64,
                        help="News passages cut to each width (the widths table).")
    args = parser.parse_args()
    embedder = SentenceEmbeddings("", precision="auto", int8_dir=args.data_dir / "int8")
    encoder = embedder.openvino
    if encoder is None or embedder.files is None:
        raise SystemExit(f"{args.data_dir} holds no OpenVINO model")
    folder = args.data_dir / "int8" if encoder.quantized else args.data_dir / "int8" / "plain"
    questions = [row["question"] for row in read_jsonl(REALTIMEQA_DEV)]
    timings = path_timings(encoder, questions, args.rounds)
    widths = width_effect(folder, embedder.files, benchmark_passages(args.passages))
    report("question-embedding", {"backend": embedder.backend, "paths": timings,
                                  "widths": widths},
           markdown_table(timings, list(timings[0]))
           + "\n\n" + markdown_table(widths, list(widths[0])))


if __name__ == "__main__":
    main()
