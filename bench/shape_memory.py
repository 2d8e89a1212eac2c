"""What an ingest's model holds, pool after pool: the padding rules against the RSS curve.

OpenVINO's CPU plugin keeps what it made for each input shape it runs (buffers, kernels)
for the life of the compiled model. This embeds news-scale passages pool by pool (2,048 at
a time, with their sentence spans, as an ingest does) with the data dir's OpenVINO model
and reports the RSS after each pool, for each padding rule, in a fresh process per rule
and round (alternating):
- "few shapes" (shipped): widths padded to multiples of 16 up to 64 word pieces, then of
  32; rows to a power of two;
- "own widths and rows" (before): a batch of texts up to 64 word pieces kept its own
  width, and a batch its own number of rows.

Usage: python -m bench.shape_memory --data-dir DIR [--pools 9] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.benchlib import NEWS_SCALE, alternating_runs, markdown_table, report, rss_mb
from bench.scale import write_subset
from index.articles_jsonl import iter_jsonl_articles
from index.chunking import CONTEXT_TOKENS, chunk_article, embedding_texts, sentence_spans_in
from index.embeddings import SentenceEmbeddings
from index.heap import return_freed_memory
from index.models import Article, Span

POOL = 2048  # what index/ingest.py hands the model at a time
RULES = ("few shapes", "own widths and rows")
# Past the articles the 1k and 3k scale stages index: passages of the 10k stage.
FIRST_ARTICLE = 3500


def news_pools(model: SentenceEmbeddings, pools: int) -> list[tuple[list[str], list[Any]]]:
    """`pools` pools of news-scale passages as an ingest embeds them, with sentence spans."""
    found: list[tuple[list[str], list[Any]]] = []
    texts: list[str] = []
    spans: list[list[Span]] = []
    window = model.max_tokens - 2 - CONTEXT_TOKENS
    with tempfile.TemporaryDirectory(prefix="dossier-shapes-") as work:
        subset = Path(work) / "news.jsonl"
        # About 14 passages an article: 250 articles fill a pool with room to spare.
        write_subset(NEWS_SCALE, FIRST_ARTICLE, FIRST_ARTICLE + 250 * pools, subset)
        for article in iter_jsonl_articles(subset, "bench", max_bytes=2**30):
            if not isinstance(article, Article):
                continue
            chunks = chunk_article(article, model.count_tokens, window=window)
            inputs = embedding_texts([(article, c) for c in chunks], model.count_tokens)
            texts += inputs
            spans += [sentence_spans_in(c, t) for c, t in zip(chunks, inputs, strict=True)]
            if len(texts) >= POOL:
                found.append((texts, spans))
                texts, spans = [], []
                if len(found) == pools:
                    break
    return found


def embed(data_dir: Path, rule: str, pools: int) -> dict[str, Any]:
    """In this process: RSS after loading and after each pool, under `rule`."""
    import index.int8

    if rule == "own widths and rows":
        index.int8.fixed_width = _own_width_up_to_64
        index.int8.fixed_rows = lambda rows, _batch: rows  # type: ignore[assignment]
    model = SentenceEmbeddings(int8_dir=data_dir / "int8", batch_size=32)
    if model.openvino is None:
        raise SystemExit(f"{data_dir} has no OpenVINO model: ingest a corpus into it first")
    work = news_pools(model, pools)
    model.encode_with_spans(work[0][0][:64], work[0][1][:64])
    loaded = rss_mb()
    after: list[float] = []
    embedded = 0
    started = time.perf_counter()
    for texts, spans in work:
        model.encode_with_spans(texts, spans)
        embedded += len(texts)
        after.append(rss_mb())
    seconds = time.perf_counter() - started
    # What glibc gives back once the pools are done: free heap, not what is still held.
    return_freed_memory()
    return {"rule": rule, "loaded_mb": loaded, "after_pool_mb": after,
            "trimmed_mb": rss_mb(), "passages/s": round(embedded / seconds, 1)}


def _own_width_up_to_64(longest: int, window: int) -> int:
    """The width rule before: short batches kept their own width."""
    if longest <= 64:
        return longest
    return min(-(-longest // 32) * 32, max(window, longest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--pools", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--embed", choices=RULES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embed:
        print(json.dumps(embed(args.data_dir, args.embed, args.pools)))
        return
    arguments = ["--data-dir", str(args.data_dir), "--pools", str(args.pools)]
    runs = alternating_runs("bench.shape_memory", arguments, "--embed", RULES, args.rounds)
    rows = [{
        "padding": run["rule"],
        "loaded MB": run["loaded_mb"],
        "after each pool MB": " / ".join(f"{mb:.0f}" for mb in run["after_pool_mb"]),
        "growth, pool 2 to last, MB": round(run["after_pool_mb"][-1] - run["after_pool_mb"][1]),
        "after malloc_trim MB": run["trimmed_mb"],
        "passages/s": run["passages/s"],
    } for run in runs]
    report("shape-memory", {"pools": args.pools, "runs": runs},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
