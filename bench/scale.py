"""News-scale: ingest time, query latency and memory as the corpus grows (1k, 3k, 10k articles).

One data dir grows stage by stage (the way a real corpus does): each stage ingests the next
articles and is timed on its own. After each stage a fresh process opens the index and
serves title queries, so its latency and memory are those of a bot started on that corpus.
With `--recipe-at N`, the plain LangChain recipe (bench/recipe.py) first ingests the first
N articles in a process of its own and serves the same kind of title queries, for ratios
measured in the same run. With `--chroma-server`, Dossier's stages write to a `chroma run`
server on 127.0.0.1 (`store.chroma_url`), whose memory is sampled beside the ingest's: the
HNSW then lives in the server, and the ingesting and serving processes hold only what they
derive from it.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.benchlib import (
    NEWS_SCALE,
    ROOT,
    PeakRSS,
    PhasePeaks,
    Stopwatch,
    dir_mb,
    markdown_table,
    report,
    rss_mb,
    timed_ms,
)
from bench.ingest_bench import heavy_imports, warm_up
from tests.support.chroma_server import ChromaServer

COLUMNS = [
    "system", "articles", "passages", "stage_s", "passages/s", "index_mb",
    "rss_before_stage_mb", "ingest_peak_rss_mb", "ingest_peak_rss_with_child_mb",
    "embedding_peak_mb", "rebuild_peak_mb", "retrieve_p50_ms",
    "retrieve_p99_ms", "ask_p50_ms", "ask_p99_ms", "serve_rss_mb", "open_s",
    "chroma_server_peak_mb",
]


def write_subset(source: Path, start: int, stop: int, target: Path) -> int:
    """Lines [start, stop) of the articles JSONL into `target` (a new file per stage)."""
    written = 0
    with gzip.open(source, "rt", encoding="utf-8") as lines, target.open("w") as out:
        for number, line in enumerate(lines):
            if number >= stop:
                break
            if number >= start and line.strip():
                out.write(line)
                written += 1
    return written


def sample_queries(files: list[Path], count: int, seed: int = 7) -> list[str]:
    """Titles of articles already indexed: news-style questions the index can answer."""
    titles = []
    for path in files:
        for line in path.open(encoding="utf-8"):
            title = json.loads(line).get("title") or ""
            if len(title.split()) >= 4:
                titles.append(title)
    return random.Random(seed).sample(titles, min(count, len(titles)))


def serve(data_dir: Path, queries: list[str]) -> dict[str, Any]:
    """In a fresh process: open the index, warm up, then time retrieve and ask per query."""
    from bot.factory import Dossier
    from bot.settings import load_settings

    with PeakRSS() as rss:
        with Stopwatch() as opened:
            dossier = Dossier(load_settings(data_dir=data_dir))
            dossier.answerer.ask(queries[0])  # model load, keyword index load
        retrieve_ms, ask_ms = [], []
        for q in queries:
            started = time.perf_counter()
            dossier.retriever.retrieve(q)
            retrieve_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            dossier.answerer.ask(q)
            ask_ms.append((time.perf_counter() - started) * 1000)
    r, a = timed_ms(retrieve_ms), timed_ms(ask_ms)
    return {
        "queries": len(queries),
        "open_s": round(opened.seconds, 1),
        "retrieve_p50_ms": r["p50_ms"], "retrieve_p99_ms": r["p99_ms"],
        "ask_p50_ms": a["p50_ms"], "ask_p99_ms": a["p99_ms"],
        "serve_rss_mb": rss.peak_mb,
    }


def run(sizes: list[int], corpus: Path, queries: int, budget_s: float, work: Path,
        chroma: ChromaServer | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Ingest `sizes` stage by stage into one data dir (and `chroma`, when given: the
    settings point at it through the environment, so the serving processes do too)."""
    from bot.factory import Dossier
    from bot.settings import load_settings
    from index.ingest import Ingestor
    from index.store import PassageStore

    # Where a stage's peak falls: embedding pools and writing them, or rebuilding the
    # keyword indexes, article vectors and passage table from the whole store at the end.
    phases = {"embedding": (Ingestor, "_embed_and_write"),
              "rebuild": (PassageStore, "finish_write")}
    data_dir = work / "data"
    dossier = Dossier(load_settings(data_dir=data_dir))
    warm_up(dossier)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    files: list[Path] = []
    done = 0
    for size in sorted(sizes):
        if rows:
            # Ingest is linear in passages: skip a stage that would overrun the budget.
            rate = rows[-1]["articles"] / rows[-1]["total_s"]
            left = budget_s - (time.perf_counter() - started)
            needed = (size - done) / rate * 1.2
            if needed > left:
                notes.append(f"{size:,} articles skipped: about {needed / 60:.0f} min more "
                             f"needed, {left / 60:.0f} min of the budget left")
                continue
        stage = work / f"articles-{done}-{size}.jsonl"
        write_subset(corpus, done, size, stage)
        files.append(stage)
        # What the process already held from earlier stages: a stage's peak minus this is
        # what the stage itself added.
        before_stage = rss_mb()
        with (PeakRSS() as rss, PeakRSS(children=True) as with_child,
              PhasePeaks(phases) as by_phase, Stopwatch() as took,
              PeakRSS(pid=chroma.pid) if chroma else contextlib.nullcontext() as server):
            ingested = dossier.ingestor().run([stage])
        if not ingested.added:  # a stage that silently indexed nothing would fake its row
            raise SystemExit(f"{size:,}-article stage indexed nothing: {ingested.skipped[:3]}")
        done = size
        served = serve_in_subprocess(data_dir, sample_queries(files, queries))
        rows.append({
            "system": "Dossier",
            "articles": ingested.added + (rows[-1]["articles"] if rows else 0),
            "passages": ingested.passages,
            "stage_s": round(took.seconds, 1),
            "passages/s": round(ingested.embedded / took.seconds, 1),
            "index_mb": dir_mb(data_dir) + (dir_mb(chroma.path) if chroma else 0.0),
            "rss_before_stage_mb": before_stage,
            "ingest_peak_rss_mb": rss.peak_mb,
            "ingest_peak_rss_with_child_mb": with_child.peak_mb,
            "embedding_peak_mb": by_phase.phase_peak_mb("embedding"),
            "rebuild_peak_mb": by_phase.phase_peak_mb("rebuild"),
            "heavy_imports": heavy_imports(),
            "total_s": round(time.perf_counter() - started, 1),
            **served,
            "chroma_server_peak_mb": server.peak_mb if server else None,
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows, notes


def recipe_stage(size: int, corpus: Path, queries: int, work: Path) -> dict[str, Any]:
    """The recipe on the first `size` articles, in a process of its own: its ingest (model
    load included, as bench/recipe.py measures it) and title queries fused as it fuses."""
    stage = work / f"recipe-articles-0-{size}.jsonl"
    write_subset(corpus, 0, size, stage)
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--recipe", str(stage), str(work / "recipe")],
        cwd=ROOT, check=True, input=json.dumps(sample_queries([stage], queries)),
        capture_output=True, text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def serve_recipe(stage: Path, workdir: Path, queries: list[str]) -> dict[str, Any]:
    from bench.recipe import RecipeIndex

    with PeakRSS() as rss:
        recipe = RecipeIndex(stage, workdir)
        ingest_rss = rss.peak_mb
        retrieve_ms = []
        recipe.fused_ids(queries[0])
        for q in queries:
            started = time.perf_counter()
            recipe.fused_ids(q)
            retrieve_ms.append((time.perf_counter() - started) * 1000)
    cost, r = recipe.cost(), timed_ms(retrieve_ms)
    return {
        "system": "recipe (dense + BM25, RRF)",
        "articles": cost["articles"], "passages": cost["chunks"], "stage_s": cost["ingest_s"],
        "passages/s": cost["chunks/s"], "index_mb": cost["index_mb"],
        "ingest_peak_rss_mb": ingest_rss, "ingest_peak_rss_with_child_mb": ingest_rss,
        "retrieve_p50_ms": r["p50_ms"], "retrieve_p99_ms": r["p99_ms"],
        "serve_rss_mb": rss.peak_mb, "queries": len(queries),
    }


def serve_in_subprocess(data_dir: Path, queries: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--serve", str(data_dir)], cwd=ROOT, check=True,
        input=json.dumps(queries), capture_output=True, text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--corpus", type=Path, default=NEWS_SCALE)
    parser.add_argument("--queries", type=int, default=40, help="Title queries per size.")
    parser.add_argument("--budget-min", type=float, default=25.0,
                        help="Skip sizes that would not finish within this many minutes.")
    parser.add_argument("--recipe-at", type=int, metavar="N",
                        help="First run the recipe on the first N articles, for ratios.")
    parser.add_argument("--chroma-server", action="store_true",
                        help="Index into a Chroma server started on 127.0.0.1 for the run.")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--recipe", type=Path, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        print(json.dumps(serve(args.serve, json.loads(sys.stdin.read()))))
        return
    if args.recipe:
        print(json.dumps(serve_recipe(*args.recipe, json.loads(sys.stdin.read()))))
        return
    with tempfile.TemporaryDirectory(prefix="dossier-scale-") as tmp:
        recipe_rows = []
        if args.recipe_at:
            recipe_rows.append(recipe_stage(args.recipe_at, args.corpus, args.queries, Path(tmp)))
            print(json.dumps(recipe_rows[-1]), file=sys.stderr, flush=True)
        server = (ChromaServer(Path(tmp) / "chroma-server") if args.chroma_server
                  else contextlib.nullcontext())
        with server as chroma:
            if chroma is not None:
                os.environ["DOSSIER_STORE__CHROMA_URL"] = chroma.url
            rows, notes = run(args.sizes, args.corpus, args.queries, args.budget_min * 60,
                              Path(tmp), chroma)
        rows = recipe_rows + rows
    data = {"corpus": str(args.corpus), "chroma_server": args.chroma_server, "rows": rows,
            "notes": notes}
    markdown = markdown_table(rows, COLUMNS)
    if notes:
        markdown += "\n\n" + "\n".join(f"- {n}" for n in notes)
    report("scale", data, markdown)


if __name__ == "__main__":
    main()
