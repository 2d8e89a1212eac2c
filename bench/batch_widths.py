"""Batches padded to a few fixed widths against batches padded to their own longest text.

OpenVINO's CPU plugin keeps buffers for each input shape it runs (BENCHMARKS.md, "Ingest
and re-ingest"). For the benchmark's news passages, embedded as an ingest does (pools of
2,048, sorted by word pieces, batches of 64), this reports:
1. the word pieces computed per real one, exact and fixed widths (arithmetic, no model);
2. in a fresh process per mode, alternating, the peak RSS and the seconds of embedding
   the pools with the data dir's OpenVINO model (the int8 one when it has one);
3. how far padding moves a vector: the cosine between each text's vector padded exactly and
   padded to the fixed widths, for 1,024 passages and the dev questions, with every batch
   padded to a multiple of 32 (the rule tried first) and with the shipped rule.

Usage: python -m bench.batch_widths --data-dir DIR [--passages 8192] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchlib import (
    REALTIMEQA_DEV,
    PeakRSS,
    alternating_runs,
    markdown_table,
    read_jsonl,
    report,
    rss_mb,
)
from bench.int8_calibration import padding_ratio
from bench.precision import benchmark_passages
from index.embeddings import SentenceEmbeddings
from index.int8 import fixed_width

POOL = 2048  # what index/ingest.py hands the model at a time
MODES = ("exact", "fixed")


def fixed_padding_ratio(lengths: np.ndarray, window: int, batch: int = 64) -> float:
    """As `padding_ratio` sorted by word pieces, each batch padded to its fixed width."""
    padded = real = 0
    for start in range(0, len(lengths), POOL):
        pool = np.sort(lengths[start : start + POOL])[::-1]
        for at in range(0, len(pool), batch):
            part = pool[at : at + batch]
            padded += fixed_width(int(part.max()), window) * len(part)
            real += int(part.sum())
    return round(padded / real, 3)


def embed_pools(data_dir: Path, mode: str, passages: list[str], batch_size: int = 64
                ) -> dict[str, Any]:
    """In this process: embed `passages` pool by pool, as an ingest does, in `mode`, with
    `batch_size` passages per model call (bench/pool_batch.py varies it)."""
    import index.int8

    if mode == "exact":  # each batch padded to its own longest text, as before
        index.int8.fixed_width = lambda longest, _window: longest  # type: ignore[assignment]
    model = SentenceEmbeddings(int8_dir=data_dir / "int8", batch_size=batch_size)
    if model.openvino is None:
        raise SystemExit(f"{data_dir} has no OpenVINO model: ingest a corpus into it first")
    model.encode(passages[:64])
    before = rss_mb()
    with PeakRSS() as rss:
        started = time.perf_counter()
        for at in range(0, len(passages), POOL):
            model.encode(passages[at : at + POOL])
        seconds = time.perf_counter() - started
    return {"mode": mode, "backend": model.backend, "rss_before_mb": before,
            "peak_rss_mb": rss.peak_mb, "seconds": round(seconds, 1),
            "passages/s": round(len(passages) / seconds, 1)}


def _every_batch_to_32s(longest: int, window: int) -> int:
    """The rule tried first: short batches (questions) padded too."""
    return min(-(-longest // 32) * 32, max(window, longest))


def agreement(data_dir: Path, passages: list[str], questions: list[str]) -> list[dict]:
    """Cosines between vectors of batches padded exactly and padded to fixed widths."""
    import index.int8

    shipped = index.int8.fixed_width
    rules = {
        "every batch to a multiple of 32": _every_batch_to_32s,
        "shipped: past 64 word pieces only": shipped,
    }
    model = SentenceEmbeddings(int8_dir=data_dir / "int8")
    texts = {"passages": passages[:1024], "dev questions": questions}
    index.int8.fixed_width = lambda longest, _window: longest  # type: ignore[assignment]
    exact = {name: model.encode(group) for name, group in texts.items()}
    rows = []
    for rule, width in rules.items():
        index.int8.fixed_width = width  # type: ignore[assignment]
        for name, group in texts.items():
            cosines = np.sum(model.encode(group) * exact[name], axis=1)
            rows.append({"padding rule": rule, "texts": f"{len(group):,} {name}",
                         "cosine to exact, mean": f"{cosines.mean():.5f}",
                         "min": f"{cosines.min():.5f}"})
    index.int8.fixed_width = shipped
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=4 * POOL)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--embed", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    passages = benchmark_passages(args.passages)
    if args.embed:
        print(json.dumps(embed_pools(args.data_dir, args.embed, passages)))
        return
    counter = SentenceEmbeddings(precision="fp32")
    lengths = np.minimum(np.array(counter.count_tokens(passages)) + 2, counter.max_tokens)
    padding = {
        "exact": padding_ratio(lengths, lengths, POOL),
        "fixed": fixed_padding_ratio(lengths, counter.max_tokens),
    }
    arguments = ["--data-dir", str(args.data_dir), "--passages", str(args.passages)]
    runs = alternating_runs("bench.batch_widths", arguments, "--embed", MODES, args.rounds)
    rows = [{
        "batches padded to": mode,
        "word pieces computed per real one": f"{padding[mode]:.3f}",
        "peak RSS MB (each round)": " / ".join(str(r["peak_rss_mb"]) for r in runs
                                               if r["mode"] == mode),
        "passages/s (each round)": " / ".join(str(r["passages/s"]) for r in runs
                                              if r["mode"] == mode),
    } for mode in MODES]
    questions = [q["question"] for q in read_jsonl(REALTIMEQA_DEV)]
    agree = agreement(args.data_dir, passages, questions)
    report("batch-widths", {"passages": len(passages), "padding": padding, "runs": runs,
                            "agreement": agree},
           markdown_table(rows, list(rows[0])) + "\n\n" + markdown_table(agree, list(agree[0])))


if __name__ == "__main__":
    main()
