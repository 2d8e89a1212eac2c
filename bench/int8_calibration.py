"""How many passages the int8 model needs to be calibrated on, and what batching by length gives.

1. Calibration size: the product's int8 model (index/int8.py) built from 16, 64, 128, 256
   and 512 benchmark passages (other than the measured ones): build seconds, and the
   cosine of its vectors to torch fp32 on 512 measured passages.
2. Padding: how many padded word pieces a batch of 64 carries per real one when a pool of
   passages is sorted by characters (as sentence-transformers does) or by word pieces
   (as the int8 path does), in pools of 512 and 2,048.
3. Speed on the same 2,048 passages, best of `--rounds` alternating rounds: torch bf16
   autocast, and the int8 model calibrated on 128 passages.

Usage: python -m bench.int8_calibration [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import index.int8
from bench.benchlib import markdown_table, report
from bench.precision import benchmark_passages
from index.embeddings import SentenceEmbeddings
from index.int8 import Int8Encoder

SIZES = (16, 64, 128, 256, 512)


def padding_ratio(lengths: np.ndarray, keys: np.ndarray, pool: int, batch: int = 64) -> float:
    padded = real = 0
    for start in range(0, len(lengths), pool):
        members = np.arange(start, min(start + pool, len(lengths)))
        order = members[np.argsort(-keys[members], kind="stable")]
        for at in range(0, len(order), batch):
            part = lengths[order[at : at + batch]]
            padded += int(part.max()) * len(part)
            real += int(part.sum())
    return round(padded / real, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    passages = benchmark_passages(2048 + max(SIZES))
    measured, held_out = passages[:2048], passages[2048:]
    fp32 = SentenceEmbeddings(precision="fp32")
    reference = fp32.encode(measured[:512])

    calibration_rows: list[dict[str, Any]] = []
    encoders: dict[int, Int8Encoder] = {}
    with tempfile.TemporaryDirectory(prefix="dossier-int8-") as workdir:
        for size in SIZES:
            # The product calibrates on at most MAX_CALIBRATION_PASSAGES: lifted here.
            index.int8.MAX_CALIBRATION_PASSAGES = size
            started = time.perf_counter()
            encoders[size] = Int8Encoder.build(
                fp32.model, fp32.model_name, held_out[:size], Path(workdir) / str(size)
            )
            built_s = time.perf_counter() - started
            cosine = np.sum(encoders[size].encode(measured[:512]) * reference, axis=1)
            calibration_rows.append({
                "calibration passages": size,
                "build s": round(built_s, 1),
                "cosine to fp32 mean": round(float(cosine.mean()), 5),
                "cosine to fp32 min": round(float(cosine.min()), 5),
            })

    lengths = np.minimum(np.array(fp32.count_tokens(measured)) + 2, fp32.max_tokens)
    characters = np.array([len(text) for text in measured])
    padding_rows = [
        {"pool": pool, "sorted by": name, "padded / real word pieces":
         f"{padding_ratio(lengths, keys, pool):.3f}"}
        for pool in (512, 2048)
        for name, keys in (("characters", characters), ("word pieces", lengths))
    ]

    bf16 = SentenceEmbeddings(precision="bf16")
    runs = {
        "torch bf16 autocast": bf16.encode,
        "OpenVINO int8 (128 passages)": encoders[128].encode,
    }
    for encode in runs.values():
        encode(measured[:64])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, encode in runs.items():
            started = time.perf_counter()
            encode(measured)
            seconds[name].append(time.perf_counter() - started)
    speed_rows = [{"model run by": name, "passages/s (best round)":
                   round(len(measured) / min(times), 1)} for name, times in seconds.items()]

    markdown = "\n\n".join([
        markdown_table(calibration_rows, list(calibration_rows[0])),
        markdown_table(padding_rows, list(padding_rows[0])),
        markdown_table(speed_rows, list(speed_rows[0])),
    ])
    report("int8-calibration", {"calibration": calibration_rows, "padding": padding_rows,
                                "speed": speed_rows, "seconds": seconds}, markdown)


if __name__ == "__main__":
    main()
