"""The plain LangChain recipe (dense, BM25, fused) against Dossier on the same corpus and questions.

The recipe runs in this process; Dossier runs in a subprocess of the same run (fresh
interpreter, fresh temp data dir), so memory is not shared and machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.benchlib import (
    REALTIMEQA_ARTICLES,
    REALTIMEQA_DEV,
    RESULTS,
    ROOT,
    PeakRSS,
    Stopwatch,
    dir_mb,
    markdown_table,
    read_jsonl,
    report,
    timed_ms,
)
from bench.levers import scores
from bot.evaluate import first_gold_rank, load_questions
from bot.timeliness import Timeliness, parse_day

K = 10
RRF_K = 60
QUALITY = ["system", "hits@4", "hits@10", "mrr@10", "answer_in_quotes", "query_p50_ms",
           "query_p99_ms"]
HALVES = ["system", "hits@4 even/odd", "hits@10 even/odd", "mrr@10 even/odd"]
COST = ["system", "articles", "chunks", "ingest_s", "articles/s", "chunks/s", "index_mb",
        "peak_rss_mb", "embedded_by"]


def retrieval_scores(ranked: Sequence[Sequence[str]], questions: Sequence[dict[str, Any]]
                     ) -> dict[str, Any]:
    """Hits@4, Hits@10, MRR@10 at article level from each question's ranked article ids,
    on the whole set and on its two halves (even and odd lines of the questions file)."""
    ranks = [
        first_gold_rank(list(ids)[:K], q["gold_articles"])
        for ids, q in zip(ranked, questions, strict=True)
        if q.get("gold_articles")
    ]
    row: dict[str, Any] = {**scores(ranks), "ranks": ranks}
    even, odd = scores(ranks[0::2]), scores(ranks[1::2])
    for metric in ("hits@4", "hits@10", "mrr@10"):
        row[f"{metric} even/odd"] = f"{even[metric]:.3f} / {odd[metric]:.3f}"
    return row


def timed_queries(search: Callable[[dict[str, Any]], list[str]],
                  questions: Sequence[dict[str, Any]]) -> tuple[list[list[str]], dict[str, Any]]:
    """Each question's ranked article ids (`search` gets the whole question record)."""
    ranked, ms = [], []
    for q in questions:
        started = time.perf_counter()
        ranked.append(search(q))
        ms.append((time.perf_counter() - started) * 1000)
    timing = timed_ms(ms)
    return ranked, {"query_p50_ms": timing["p50_ms"], "query_p99_ms": timing["p99_ms"]}


def rrf(*lists: Sequence[int]) -> list[int]:
    """Reciprocal-rank fusion with equal weights, as LangChain's EnsembleRetriever does."""
    score: dict[int, float] = defaultdict(float)
    for ranked in lists:
        for rank, item in enumerate(ranked):
            score[item] += 1.0 / (RRF_K + rank + 1)
    return sorted(score, key=lambda item: score[item], reverse=True)


# --- the recipe --------------------------------------------------------------------------


class RecipeIndex:
    """The recipe's index of a corpus (built, or reused from a kept workdir) and its three
    searches, each giving chunk numbers."""

    def __init__(self, corpus: Path, workdir: Path) -> None:
        import bm25s
        import Stemmer
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from index.embeddings import bundled_model_path

        self.embeddings = HuggingFaceEmbeddings(model_name=bundled_model_path())
        self.embeddings.embed_query("warm up")
        with Stopwatch() as ingest:
            self.docs = [
                Document(page_content=a["text"], metadata={"article_id": a["id"]})
                for a in read_jsonl(corpus)
            ]
            splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
            self.chunks = splitter.split_documents(self.docs)
            for i, chunk in enumerate(self.chunks):
                chunk.metadata["chunk"] = i
            self.store = Chroma(
                collection_name="recipe",
                embedding_function=self.embeddings,
                persist_directory=str(workdir / "chroma"),
                client_settings=ChromaSettings(anonymized_telemetry=False),
            )
            # A kept workdir whose store is complete is reused (queries only, no ingest figures).
            self.reused = self.store._collection.count() == len(self.chunks)
            for at in range(0, 0 if self.reused else len(self.chunks), 1000):  # Chroma's max
                self.store.add_documents(self.chunks[at : at + 1000])
        self.ingest_s = ingest.seconds
        print(f"recipe ingest: {len(self.chunks)} chunks, {ingest.seconds:.1f} s, "
              f"reused={self.reused}", file=sys.stderr, flush=True)
        with Stopwatch() as keyword_build:
            self._stemmer = Stemmer.Stemmer("english")
            self._bm25 = bm25s.BM25()
            self._bm25.index(
                bm25s.tokenize([c.page_content for c in self.chunks], stopwords="en",
                               stemmer=self._stemmer, show_progress=False),
                show_progress=False,
            )
        self.bm25_build_s = keyword_build.seconds
        self.article_of = [c.metadata["article_id"] for c in self.chunks]
        self.index_dir = workdir / "chroma"

    def dense_ids(self, q: str) -> list[int]:
        return [d.metadata["chunk"] for d in self.store.similarity_search(q, k=K)]

    def bm25_ids(self, q: str) -> list[int]:
        import bm25s

        tokens = bm25s.tokenize([q], stopwords="en", stemmer=self._stemmer, show_progress=False)
        rows, _ = self._bm25.retrieve(tokens, k=K, show_progress=False, n_threads=1)
        return [int(r) for r in rows[0]]

    def fused_ids(self, q: str) -> list[int]:
        return rrf(self.dense_ids(q), self.bm25_ids(q))[:K]

    def cost(self) -> dict[str, Any]:
        """Ingest figures (None for a reused store) and the index's size."""
        seconds = None if self.reused else self.ingest_s
        return {
            "articles": len(self.docs),
            "articles/s": None if seconds is None else round(len(self.docs) / seconds, 2),
            "chunks": len(self.chunks),
            "ingest_s": None if seconds is None else round(seconds, 1),
            "chunks/s": None if seconds is None else round(len(self.chunks) / seconds, 1),
            "bm25_build_s": round(self.bm25_build_s, 1),
            "index_mb": dir_mb(self.index_dir),
        }


def run_recipe(corpus: Path, questions: list[dict[str, Any]], workdir: Path) -> list[dict]:
    with PeakRSS() as rss:
        recipe = RecipeIndex(corpus, workdir)
        variants: dict[str, Callable[[str], list[int]]] = {
            "recipe dense": recipe.dense_ids,
            "recipe BM25": recipe.bm25_ids,
            "recipe RRF": recipe.fused_ids,
        }
        rows = []
        for name, search in variants.items():

            def articles(q: dict[str, Any], ids: Callable[[str], list[int]] = search) -> list[str]:
                return [recipe.article_of[i] for i in ids(q["question"])]

            ranked, timing = timed_queries(articles, questions)
            rows.append({"system": name, **retrieval_scores(ranked, questions), **timing})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    cost = {**recipe.cost(), "peak_rss_mb": rss.peak_mb}
    for row in rows:
        row.update(cost)
    return rows


# --- ours --------------------------------------------------------------------------------


def run_ours(corpus: Path, questions: list[dict[str, Any]], data_dir: Path, reuse: bool
             ) -> list[dict]:
    from bot.evaluate import evaluate
    from bot.factory import Dossier
    from bot.settings import load_settings

    with PeakRSS() as rss:
        dossier = Dossier(load_settings(data_dir=data_dir))
        dossier.embedder.encode(["warm up"])
        with Stopwatch() as ingest:
            # A reused index is taken as it is: ingesting it with newer cleaning code
            # would re-embed every changed article, which is not what is measured here.
            passages = dossier.store.count() if reuse else dossier.ingestor().run([corpus]).passages
        articles = len(dossier.store.records())
        store, embedder = dossier.store, dossier.embedder
        retriever = dossier.retriever
        # The same retriever blind to dates: what a question without an asking date gets.
        undated = retriever.model_copy(update={"timeliness": Timeliness(0.0, 30.0, 0.0)})
        # The ranking shipped before whole articles were also searched by their vectors.
        before = undated.model_copy(update={"article_keyword_weight": 1.5,
                                            "article_dense_weight": 0.0})

        def articles_of(pids: list[str]) -> list[str]:
            return [pid.rsplit(":", 1)[0] for pid in pids]  # ids are "<article id>:<hash>"

        variants = {
            "Dossier hybrid": lambda q: [
                r.passage.article_id
                for r in retriever.retrieve(q["question"], k=K, as_of=parse_day(q.get("date")))
            ],
            "Dossier hybrid, dates ignored": lambda q: [
                r.passage.article_id for r in undated.retrieve(q["question"], k=K)
            ],
            "Dossier hybrid, dates ignored, without article vectors (BM25 1.5, before)":
                lambda q: [r.passage.article_id for r in before.retrieve(q["question"], k=K)],
            "Dossier dense only": lambda q: [
                p.article_id for p in store.dense_search(embedder.embed_query(q["question"]), K)
            ],
            "Dossier BM25 only": lambda q: articles_of(
                [pid for pid, _ in store.keyword_search(q["question"], K)]
            ),
        }
        rows = []
        for name, search in variants.items():
            search(questions[0])  # loads the keyword index before timing
            ranked, timing = timed_queries(search, questions)
            rows.append({"system": name, **retrieval_scores(ranked, questions), **timing})
        full = evaluate(dossier, questions, k_max=K)
    result = full.to_json()
    rows[0].update(
        {
            "answer_in_quotes": result["answer_in_quotes"],
            "answered": result["answered"],
            "verbatim": result["verbatim"],
            "ask_p50_ms": result["p50_ms"],
            "ask_p95_ms": result["p95_ms"],
            "missed": result["missed"],
        }
    )
    seconds = ingest.seconds
    cost = {
        "articles": articles,
        "articles/s": None if reuse else round(articles / seconds, 2),
        "chunks": passages,
        "ingest_s": None if reuse else round(seconds, 1),
        "chunks/s": None if reuse else round(passages / seconds, 1),
        "index_mb": dir_mb(data_dir),
        "peak_rss_mb": rss.peak_mb,
        "embedded_by": embedder.backend,
    }
    for row in rows:
        row.update(cost)
    return rows


def ours_in_subprocess(args: argparse.Namespace) -> list[dict]:
    command = [sys.executable, "-m", "bench.recipe", "--emit-rows", "--corpus", str(args.corpus),
               "--questions", str(args.questions)]
    done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def ratios(rows: list[dict]) -> dict[str, Any]:
    by = {r["system"]: r for r in rows}
    ours, dense, fused = by["Dossier hybrid"], by["recipe dense"], by["recipe RRF"]

    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 2) if a and b else None

    return {
        "hits@4 vs dense": ratio(ours["hits@4"], dense["hits@4"]),
        "hits@10 vs dense": ratio(ours["hits@10"], dense["hits@10"]),
        "mrr@10 vs dense": ratio(ours["mrr@10"], dense["mrr@10"]),
        "mrr@10 vs RRF": ratio(ours["mrr@10"], fused["mrr@10"]),
        "ingest chunks/s": ratio(ours["chunks/s"], dense["chunks/s"]),
        "ingest articles/s": ratio(ours["articles/s"], dense["articles/s"]),
        "ingest seconds": ratio(ours["ingest_s"], dense["ingest_s"]),
        "index MB": ratio(ours["index_mb"], dense["index_mb"]),
        "peak RSS": ratio(ours["peak_rss_mb"], dense["peak_rss_mb"]),
        "query p50 vs dense": ratio(ours["query_p50_ms"], dense["query_p50_ms"]),
        "query p99 vs dense": ratio(ours["query_p99_ms"], dense["query_p99_ms"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    parser.add_argument("--side", choices=["both", "recipe", "ours"], default="both",
                        help="One side alone writes results/recipe-<side>.json (see --combine).")
    parser.add_argument("--ours-data-dir", type=Path,
                        help="Reuse this Dossier index (no ingest figures) instead of a fresh one.")
    parser.add_argument("--ours-ingest-json", type=Path,
                        help="With --ours-data-dir: take ours' ingest figures from ingest_bench.")
    parser.add_argument("--combine", action="store_true",
                        help="Merge results/recipe-recipe.json and recipe-ours.json (two halves "
                             "run side by side on a busy machine) into results/recipe.json.")
    parser.add_argument("--recipe-workdir", type=Path,
                        help="Keep the recipe's Chroma here; a complete one is reused.")
    parser.add_argument("--emit-rows", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    questions = load_questions(args.questions)

    if args.combine:
        rows = [*_rows_of("recipe-recipe"), *_rows_of("recipe-ours")]
        _finish("recipe", args, len(questions), rows)
        return
    if args.emit_rows:  # ours_in_subprocess: a fresh interpreter and data dir
        print(json.dumps(fresh_ours(args, questions)))
        return
    rows = []
    if args.side in ("both", "recipe") and args.recipe_workdir:
        args.recipe_workdir.mkdir(parents=True, exist_ok=True)
        rows += run_recipe(args.corpus, questions, args.recipe_workdir)
    elif args.side in ("both", "recipe"):
        with tempfile.TemporaryDirectory(prefix="dossier-recipe-") as tmp:
            rows += run_recipe(args.corpus, questions, Path(tmp))
    if args.side in ("both", "ours"):
        # A fresh ingest in a process of its own unless an index is given to reuse.
        rows += ours_in_subprocess(args) if args.ours_data_dir is None else reused_ours(args,
                                                                                      questions)
    _finish("recipe" if args.side == "both" else f"recipe-{args.side}", args, len(questions), rows)


def fresh_ours(args: argparse.Namespace, questions: list[dict[str, Any]]) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="dossier-ours-") as tmp:
        return run_ours(args.corpus, questions, Path(tmp) / "data", reuse=False)


def reused_ours(args: argparse.Namespace, questions: list[dict[str, Any]]) -> list[dict]:
    rows = run_ours(args.corpus, questions, args.ours_data_dir, reuse=True)
    if args.ours_ingest_json:
        ingest = json.loads(args.ours_ingest_json.read_text())
        for row in rows:
            row.update({"ingest_s": ingest["seconds"], "chunks/s": ingest["passages/s"],
                        "peak_rss_mb": max(row["peak_rss_mb"], ingest["peak_rss_mb"])})
    return rows


def _rows_of(name: str) -> list[dict]:
    return list(json.loads((RESULTS / f"{name}.json").read_text())["rows"])


def _finish(name: str, args: argparse.Namespace, questions: int, rows: list[dict]) -> None:
    data: dict[str, Any] = {"corpus": str(args.corpus), "questions": questions, "rows": rows}
    markdown = "\n\n".join(markdown_table(rows, columns) for columns in (QUALITY, HALVES, COST))
    systems = {r["system"] for r in rows}
    if {"Dossier hybrid", "recipe dense"} <= systems:
        data["ratios"] = ratios(rows)
        markdown += "\n\n" + markdown_table([data["ratios"]], list(data["ratios"]))
    report(name, data, markdown)


if __name__ == "__main__":
    main()
