"""Each article order that retrieval fuses, alone: which one finds the story without dates.

The passages' vectors and the passages' BM25 (an article ranked by its best passage), BM25
over whole articles and the article vectors (each article's mean passage vector), with the
question dates ignored, on the whole dev set and its two halves; over one built index, read
as `bench.ranking_levers` reads it (exact cosine).

Usage: python -m bench.article_orders --data-dir DIR [--questions Q.jsonl]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.benchlib import index_arguments, markdown_table, report
from bench.levers import scores
from bench.ranking_levers import Bench, K, Variant, best
from bot.evaluate import first_gold_rank, load_questions
from bot.factory import Dossier
from bot.settings import load_settings

DEPTH = 200  # passages read for the passage-level orders: enough for ten articles


def orders(bench: Bench) -> dict[str, Callable[[int], list[str]]]:
    shipped = Variant()
    vectors = bench.query_vectors("as asked")
    passage_bm25, article_bm25 = bench.passage_bm25(shipped), bench.article_bm25(shipped)

    def by_best_passage(values: np.ndarray) -> list[str]:
        return list(dict.fromkeys(bench.article_of[row] for row in best(values, DEPTH)))

    def articles(values: np.ndarray) -> list[str]:
        return [bench.article_ids[row] for row in best(values, K)]

    def text(n: int) -> str:
        return str(bench.questions[n]["question"])

    return {
        "passages' vectors (best passage)": lambda n: by_best_passage(bench.vectors @ vectors[n]),
        "passages' BM25 (best passage)": lambda n: by_best_passage(passage_bm25.scores(text(n))),
        "BM25 over whole articles (title x3)": lambda n: articles(article_bm25.scores(text(n))),
        "article vectors (mean passage vector)": lambda n: articles(
            bench.centroids() @ vectors[n]),
    }


def measure(bench: Bench, order: Callable[[int], list[str]]) -> dict[str, Any]:
    ranks = [first_gold_rank(order(n)[:K], q["gold_articles"])
             for n, q in enumerate(bench.questions)]
    row: dict[str, Any] = dict(scores(ranks))
    for metric in ("hits@4", "hits@10", "mrr@10"):
        even, odd = scores(ranks[0::2])[metric], scores(ranks[1::2])[metric]
        row[f"{metric} even/odd"] = f"{even:.3f} / {odd:.3f}"
    return row


def main() -> None:
    args = index_arguments(__doc__)
    questions = [q for q in load_questions(args.questions) if q.get("gold_articles")]
    bench = Bench(Dossier(load_settings(data_dir=args.data_dir)), questions)
    rows = [{"order": name, **measure(bench, order)} for name, order in orders(bench).items()]
    columns = ["order", "hits@4", "hits@10", "mrr@10", "hits@4 even/odd", "hits@10 even/odd",
               "mrr@10 even/odd"]
    report("article-orders", {"questions": len(questions), "dates": "ignored", "rows": rows},
           markdown_table(rows, columns))


if __name__ == "__main__":
    main()
