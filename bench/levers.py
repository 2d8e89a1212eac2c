"""Each retrieval lever on and off, over one built index: its effect on Hits and MRR.

Every variant is the product's own HybridRetriever with other settings (no re-ingest), so
the figures are what `dossier eval` would give with those settings. The dev set is also
scored in two halves (even and odd lines): a lever is kept only when it helps on both,
since 84 questions carry about ±0.05 of noise. Last, what each index kept beside Chroma
(BM25 over passages, over whole articles, the article vectors) costs to search and to build.

Usage: python -m bench.levers --data-dir DIR [--questions Q.jsonl]
(DIR: an index of the realtimeqa articles, e.g. from `python -m bench.ingest_bench --keep DIR`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.benchlib import index_arguments, markdown_table, report, timed_ms
from bot.evaluate import first_gold_rank, load_questions
from bot.factory import Dossier
from bot.retrieval import HybridRetriever
from bot.settings import load_settings
from bot.timeliness import Timeliness, parse_day
from index.article_vectors import ArticleVectors
from index.keyword import ARTICLE_BM25, KeywordIndex, article_text

K = 10
NO_DATES = Timeliness(recency_weight=0.0, half_life_days=30.0, phrase_boost=0.0)


def variants(base: HybridRetriever) -> dict[str, HybridRetriever]:
    """Levers on and off with the dates ignored, then with the dates used (shipped last)."""
    on = base.timeliness

    def with_(**changes: Any) -> HybridRetriever:
        return base.model_copy(update=changes)

    def undated(**changes: Any) -> HybridRetriever:
        return with_(timeliness=NO_DATES, **changes)

    return {
        "dates ignored: passages only (RRF k=60, articles interleaved)": undated(
            article_support=0.0, article_keyword_weight=0.0, article_dense_weight=0.0
        ),
        "dates ignored: + article support 0.3": undated(
            article_keyword_weight=0.0, article_dense_weight=0.0
        ),
        "dates ignored: + whole-article BM25 1.5 (before)": undated(
            article_keyword_weight=1.5, article_dense_weight=0.0
        ),
        "dates ignored: + whole-article BM25 2.0": undated(article_dense_weight=0.0),
        "dates ignored: + article vectors 1.0 (shipped)": undated(),
        "dates ignored: shipped, article vectors 0.5": undated(article_dense_weight=0.5),
        "dates ignored: shipped, article vectors 1.5": undated(article_dense_weight=1.5),
        "dates ignored: shipped, whole-article BM25 1.5": undated(article_keyword_weight=1.5),
        "dates ignored: shipped, whole-article BM25 2.5": undated(article_keyword_weight=2.5),
        "dates ignored: shipped, article support 0": undated(article_support=0.0),
        "dates ignored: shipped, rrf_k=20": undated(rrf_k=20),
        "dates ignored: shipped, depths 100": undated(dense_depth=100, keyword_depth=100),
        "dates used: passages only, article support 0.3": with_(
            article_keyword_weight=0.0, article_dense_weight=0.0
        ),
        "dates used: whole-article BM25 1.5 (before)": with_(
            article_keyword_weight=1.5, article_dense_weight=0.0
        ),
        "dates used: shipped, article vectors 0": with_(article_dense_weight=0.0),
        "dates used: time phrases without recency": with_(
            timeliness=Timeliness(0.0, on.half_life_days, on.phrase_boost)
        ),
        "dates used: recency without time phrases": with_(
            timeliness=Timeliness(on.recency_weight, on.half_life_days, 0.0)
        ),
        "dates used: shipped, article support 0": with_(article_support=0.0),
        "dates used: shipped, recency 1.0": with_(
            timeliness=Timeliness(1.0, on.half_life_days, on.phrase_boost)
        ),
        "**dates used: shipped settings**": base,
    }


def scores(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "hits@4": round(sum(1 for r in ranks if r is not None and r <= 4) / n, 3),
        "hits@10": round(sum(1 for r in ranks if r is not None) / n, 3),
        "mrr@10": round(sum(1 / r for r in ranks if r is not None) / n, 3),
    }


def measure(retriever: HybridRetriever, questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ranks, ms = [], []
    for q in questions:
        started = time.perf_counter()
        found = retriever.retrieve(q["question"], k=K, as_of=parse_day(q.get("date")))
        ms.append((time.perf_counter() - started) * 1000)
        ranks.append(first_gold_rank([r.passage.article_id for r in found], q["gold_articles"]))
    row: dict[str, Any] = dict(scores(ranks))
    row["retrieve p50 ms"] = timed_ms(ms)["p50_ms"]
    even, odd = scores(ranks[0::2]), scores(ranks[1::2])
    row.update({"hits@4 even/odd": f"{even['hits@4']:.3f} / {odd['hits@4']:.3f}",
                "hits@10 even/odd": f"{even['hits@10']:.3f} / {odd['hits@10']:.3f}",
                "mrr@10 even/odd": f"{even['mrr@10']:.3f} / {odd['mrr@10']:.3f}"})
    return row


def search_costs(dossier: Dossier, questions: Sequence[str]) -> list[dict[str, Any]]:
    """Each search over a whole index alone, alternated question by question so load hits
    them alike."""
    store = dossier.store
    vectors = dossier.embedder.encode_cached(list(questions))
    searches: dict[str, Callable[[int], object]] = {
        "BM25 over passages": lambda n: store.keyword_search(questions[n], 50),
        "BM25 over whole articles": lambda n: store.article_keyword_search(questions[n], 50),
        "article vectors": lambda n: store.article_dense_search(vectors[n], 50),
    }
    ms: dict[str, list[float]] = {name: [] for name in searches}
    for n in range(len(questions)):
        for name, search in searches.items():
            started = time.perf_counter()
            search(n)
            ms[name].append((time.perf_counter() - started) * 1000)
    return [{"search": name, **timed_ms(values)} for name, values in ms.items()]


def rebuild_costs(dossier: Dossier, repeats: int = 3) -> list[dict[str, Any]]:
    """What each index kept beside Chroma costs to build from the store, as every ingest
    that changed something does (built in memory here: the saved ones are left alone)."""
    store = dossier.store
    builds: dict[str, Callable[[], object]] = {
        "BM25 over passages": lambda: KeywordIndex.build_streamed(store.iter_passages(), "x"),
        "BM25 over whole articles": lambda: KeywordIndex.build_streamed(
            ((a, article_text(title, text)) for a, title, text in store.iter_articles()),
            "x", **ARTICLE_BM25),
        "article vectors": lambda: ArticleVectors.build(store.iter_article_vectors(), "x"),
    }
    ms: dict[str, list[float]] = {name: [] for name in builds}
    for _ in range(repeats):
        for name, build in builds.items():
            started = time.perf_counter()
            build()
            ms[name].append((time.perf_counter() - started) * 1000)
    return [{"index": name, "min_s": round(min(v) / 1000, 2), "max_s": round(max(v) / 1000, 2)}
            for name, v in ms.items()]


def main() -> None:
    args = index_arguments(__doc__)
    questions = [q for q in load_questions(args.questions) if q.get("gold_articles")]
    dossier = Dossier(load_settings(data_dir=args.data_dir))
    # Every row then times ranking alone: question vectors cached, keyword indexes loaded.
    dossier.embedder.encode_cached([q["question"] for q in questions])
    dossier.retriever.retrieve(questions[0]["question"])
    rows = [{"variant": name, **measure(retriever, questions)}
            for name, retriever in variants(dossier.retriever).items()]
    searches = search_costs(dossier, [q["question"] for q in questions])
    builds = rebuild_costs(dossier)
    columns = ["variant", "hits@4", "hits@10", "mrr@10", "hits@4 even/odd", "hits@10 even/odd",
               "mrr@10 even/odd", "retrieve p50 ms"]
    report("levers", {"questions": len(questions), "rows": rows, "searches": searches,
                      "rebuilds": builds},
           markdown_table(rows, columns) + "\n\n" + markdown_table(searches, list(searches[0]))
           + "\n\n" + markdown_table(builds, list(builds[0])))


if __name__ == "__main__":
    main()
