"""Ranking levers that are not settings, on one built index, mostly with the question dates ignored.

BM25 parameters, fields and stemming, pseudo-relevance feedback (RM3-style), score fusion
against reciprocal rank, what the whole-article index reads, query-side removal of time
phrases and question words. Each is measured by a re-implementation of the retriever's
ranking over the passages, vectors and articles read from the index (exact cosine instead
of Chroma's HNSW, no re-ingest); its first rows are the product's settings, so they can be
checked against `python -m bench.levers` on the same index. Every row is scored on the
whole dev set and on its two halves (even and odd lines).

Article levers: how an article's passages add up, one fusion of article-level lists,
the titles' vectors, and each article's mean passage vector ("article vectors", shipped).
Rows marked "dates used" weigh dates as the product does, each question asked on its day.

Usage: python -m bench.ranking_levers --data-dir DIR [--questions Q.jsonl]
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import bm25s
import numpy as np
import Stemmer

from bench.benchlib import index_arguments, markdown_table, report
from bench.levers import scores
from bot.evaluate import first_gold_rank, load_questions
from bot.factory import Dossier
from bot.settings import load_settings
from bot.timeliness import parse_day, today
from index.keyword import ARTICLE_BM25, article_text

K = 10
_STEMMER = Stemmer.Stemmer("english")
_TIME = re.compile(
    r"\b(?:(?:earlier |later )?this|past|last) (?:week|weekend|month|year)\b"
    r"|\b(?:in recent (?:days|weeks)|recently|today|tonight|yesterday|this morning)\b",
    re.IGNORECASE,
)
_QUESTION_WORDS = re.compile(
    r"\b(?:which|what|who|whom|whose|where|when|why|how(?: many| much| long)?"
    r"|approximately|did|does|do|is|are|was|were)\b",
    re.IGNORECASE,
)


def without_time(question: str) -> str:
    return re.sub(r"\s+([,.?])", r"\1", re.sub(r"\s{2,}", " ", _TIME.sub("", question))).strip()


def without_question_words(question: str) -> str:
    return re.sub(r"\s{2,}", " ", _QUESTION_WORDS.sub("", without_time(question))).strip()


class Bm25:
    """bm25s over some texts, with the product's tokenizer (English stop words, Snowball)."""

    def __init__(self, texts: Sequence[str], params: dict[str, float] | None = None, *,
                 stopwords: str | None = "en", stem: bool = True) -> None:
        self.stopwords, self.stem = stopwords, stem
        self.tokens = [list(t) for t in self.tokenize(texts)]
        self.bm25 = bm25s.BM25(**(params or {}))
        self.bm25.index(self.tokens, show_progress=False)
        self.size = len(texts)

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        got = bm25s.tokenize(list(texts), stopwords=self.stopwords,
                             stemmer=_STEMMER if self.stem else None, return_ids=False,
                             show_progress=False)
        return [list(t) for t in got]

    def scores(self, query: str) -> np.ndarray:
        return self.term_scores(self.tokenize([query])[0])

    def term_scores(self, terms: Sequence[str], weights: Sequence[float] | None = None
                    ) -> np.ndarray:
        total = np.zeros(self.size)
        for n, term in enumerate(terms):
            if term in self.bm25.vocab_dict:
                total += (1.0 if weights is None else weights[n]) * self.bm25.get_scores([term])
        return total


def rm3(index: Bm25, query: str, docs: int, terms: int, original: float) -> np.ndarray:
    """Re-score with the query's terms plus the best terms of the first pass's top documents."""
    first = index.scores(query)
    top_docs = best(first, docs)
    if not top_docs:
        return first
    df = Counter(t for doc in index.tokens for t in set(doc))
    weight: Counter[str] = Counter()
    for row in top_docs:
        counts, length = Counter(index.tokens[row]), len(index.tokens[row]) or 1
        for term, count in counts.items():
            weight[term] += count / length * math.log(index.size / df[term]) * (
                first[row] / first[top_docs[0]])
    asked = index.tokenize([query])[0]
    expansion = [t for t, _ in weight.most_common(terms + len(asked)) if t not in asked][:terms]
    share = sum(weight[t] for t in expansion) or 1.0
    return original * index.term_scores(asked) + (1 - original) * len(asked) * index.term_scores(
        expansion, [weight[t] / share for t in expansion])


def best(values: np.ndarray, depth: int) -> list[int]:
    """Rows of the `depth` highest positive values, best first."""
    depth = min(depth, len(values))
    rows = np.argpartition(-values, depth - 1)[:depth]
    return [int(r) for r in rows[np.argsort(-values[rows])] if values[r] > 0]


def aggregate(v: Variant, passages: list[float]) -> float:
    """An article's score from its candidate passages' fused scores, best first."""
    if v.aggregate == "max":
        return passages[0]
    if v.aggregate == "max + half the next":
        return passages[0] + 0.5 * sum(passages[1:2])
    if v.aggregate == "soft count":
        return sum(value * 0.5**n for n, value in enumerate(passages))
    return passages[0] + v.support * sum(passages[1:3])


@dataclass(frozen=True)
class Variant:
    """One way of ranking; the defaults are the shipped settings with dates ignored."""

    depth: int = 50
    rrf_k: int = 60
    support: float = 0.3
    fusion: str = "rrf"  # or "convex": min-max normalised scores, `dense_share` of dense
    dense_share: float = 0.5
    passage_index: str = "text"  # or "titled" (title and heading first), "unstemmed"
    passage_bm25: tuple[tuple[str, float], ...] = ()
    article_weight: float = 2.0
    article_index: str = "title x3"  # or "text", "title x1", "title x5", "title only"
    article_bm25: tuple[tuple[str, float], ...] = tuple(ARTICLE_BM25.items())
    article_rm3: tuple[int, int, float] | None = None
    query: str = "as asked"  # or "no time phrases", "no time phrases or question words"
    query_both_sides: bool = False
    # How an article's candidate passages add up: "support" (best + `support` x next two),
    # "max", "max + half the next", "soft count" (every passage, each half the one before).
    aggregate: str = "support"
    # "passages": fused passages make one article order, fused with the article BM25 one;
    # "lists": the dense order, the passage-BM25 order and the article-BM25 order of
    # articles fused once, by reciprocal rank (each side's best passage stands for it).
    article_fusion: str = "passages"
    title_dense_weight: float = 0.0  # an article order by the question's cosine to titles
    # An article order by the question's cosine to each article's mean passage vector.
    article_dense_weight: float = 1.0
    dates: bool = False  # the product's date weighting, each question asked on its quiz day


class Bench:
    """The index's passages, vectors and articles in memory, and the questions' vectors."""

    def __init__(self, dossier: Dossier, questions: list[dict[str, Any]]) -> None:
        store = dossier.store
        got = store.passages.get(include=["documents", "metadatas", "embeddings"])
        self.texts: list[str] = list(got["documents"] or [])
        metas = [dict(m or {}) for m in got["metadatas"] or []]
        self.article_of = [str(m["article_id"]) for m in metas]
        self.heading = [str(m.get("heading") or "") for m in metas]
        self.vectors = np.asarray(got["embeddings"], dtype=np.float32)
        articles = list(store.iter_articles())
        self.article_ids = [a for a, _, _ in articles]
        self.title = {a: title for a, title, _ in articles}
        self.article_texts = {a: text for a, _, text in articles}
        self.questions = questions
        self.embedder = dossier.embedder
        self.timeliness = dossier.retriever.timeliness
        self.published = store.published_dates(self.article_ids)
        self._cache: dict[Any, Any] = {}

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def query_texts(self, how: str) -> list[str]:
        rewrite = {"as asked": lambda q: q, "no time phrases": without_time,
                   "no time phrases or question words": without_question_words}[how]
        return [rewrite(q["question"]) for q in self.questions]

    def query_vectors(self, how: str) -> np.ndarray:
        return self.cached(("vectors", how), lambda: np.asarray(
            self.embedder.encode(self.query_texts(how))))

    def passage_bm25(self, v: Variant) -> Bm25:
        def build() -> Bm25:
            texts = self.texts
            if v.passage_index == "titled":
                texts = [self._titled(row) for row in range(len(self.texts))]
            return Bm25(texts, dict(v.passage_bm25), stem=v.passage_index != "unstemmed")
        return self.cached(("passages", v.passage_index, v.passage_bm25), build)

    def _titled(self, row: int) -> str:
        heading = self.heading[row]
        parts = [self.title[self.article_of[row]]]
        if heading and not self.texts[row].startswith(heading):
            parts.append(heading)
        return "\n".join([*parts, self.texts[row]])

    def article_bm25(self, v: Variant) -> Bm25:
        def text(article_id: str) -> str:
            title, body = self.title[article_id], self.article_texts[article_id]
            if v.article_index == "title only":
                return title
            repeats = {"text": 0, "title x1": 1, "title x3": 3, "title x5": 5}[v.article_index]
            return "\n".join([title] * repeats + [body])

        def build() -> Bm25:
            if v.article_index == "title x3" and dict(v.article_bm25) == ARTICLE_BM25:
                texts = [article_text(self.title[a], self.article_texts[a])
                         for a in self.article_ids]  # what the product indexes
            else:
                texts = [text(a) for a in self.article_ids]
            return Bm25(texts, dict(v.article_bm25))
        return self.cached(("articles", v.article_index, v.article_bm25), build)

    def ranked_articles(self, v: Variant, n: int, vectors: np.ndarray, text: str) -> list[str]:
        dense = self.vectors @ vectors[n]
        keyword = self.passage_bm25(v).scores(text)
        dense_rows, keyword_rows = best(dense, v.depth), best(keyword, v.depth)
        fused: dict[int, float] = defaultdict(float)
        if v.fusion == "rrf":
            for rank, row in enumerate(dense_rows):
                fused[row] += 1.0 / (v.rrf_k + rank + 1)
            for rank, row in enumerate(keyword_rows):
                fused[row] += 1.0 / (v.rrf_k + rank + 1)
        else:
            for share, values, rows in ((v.dense_share, dense, dense_rows),
                                        (1 - v.dense_share, keyword, keyword_rows)):
                if rows:
                    high, low = values[rows[0]], values[rows[-1]]
                    for row in set(dense_rows) | set(keyword_rows):
                        fused[row] += share * max(0.0, (values[row] - low) / ((high - low) or 1))
        by_article: dict[str, list[float]] = defaultdict(list)
        for row, value in sorted(fused.items(), key=lambda item: -item[1]):
            by_article[self.article_of[row]].append(value)
        score = {a: aggregate(v, s) for a, s in by_article.items()}
        if v.article_fusion == "lists":
            score = dict.fromkeys(score, 0.0)
            for rows in (dense_rows, keyword_rows):
                for rank, a in enumerate(dict.fromkeys(self.article_of[r] for r in rows)):
                    score[a] += 1.0 / (v.rrf_k + rank + 1)
        elif v.article_weight > 0:
            order = sorted(score, key=score.__getitem__, reverse=True)
            score = {a: 1.0 / (v.rrf_k + rank + 1) for rank, a in enumerate(order)}
        if v.title_dense_weight > 0:
            titles = self.title_vectors() @ vectors[n]
            for rank, row in enumerate(best(titles, v.depth)):
                if self.article_ids[row] in score:
                    score[self.article_ids[row]] += v.title_dense_weight / (v.rrf_k + rank + 1)
        if v.article_dense_weight > 0:
            for rank, row in enumerate(best(self.centroids() @ vectors[n], v.depth)):
                if self.article_ids[row] in score:
                    score[self.article_ids[row]] += v.article_dense_weight / (v.rrf_k + rank + 1)
        if v.article_weight > 0:
            index = self.article_bm25(v)
            values = rm3(index, text, *v.article_rm3) if v.article_rm3 else index.scores(text)
            for rank, row in enumerate(best(values, v.depth)):
                if self.article_ids[row] in score:
                    score[self.article_ids[row]] += v.article_weight / (v.rrf_k + rank + 1)
        if v.dates:
            weights = self.timeliness.weights(
                self.questions[n]["question"], {a: self.published[a] for a in score},
                parse_day(self.questions[n].get("date")) or today())
            score = {a: value * weights.get(a, 1.0) for a, value in score.items()}
        return sorted(score, key=score.__getitem__, reverse=True)

    def title_vectors(self) -> np.ndarray:
        return self.cached("titles", lambda: np.asarray(
            self.embedder.encode([self.title[a] for a in self.article_ids])))

    def centroids(self) -> np.ndarray:
        """Each article's passage vectors averaged and normalised, in `article_ids` order."""
        def build() -> np.ndarray:
            row_of = {a: n for n, a in enumerate(self.article_ids)}
            sums = np.zeros((len(self.article_ids), self.vectors.shape[1]), dtype=np.float32)
            np.add.at(sums, [row_of[a] for a in self.article_of], self.vectors)
            return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        return self.cached("centroids", build)

    def measure(self, v: Variant) -> dict[str, Any]:
        vectors = self.query_vectors(v.query)
        texts = self.query_texts(v.query if v.query_both_sides else "as asked")
        ranks = [
            first_gold_rank(self.ranked_articles(v, n, vectors, texts[n])[:K], q["gold_articles"])
            for n, q in enumerate(self.questions)
        ]
        row: dict[str, Any] = dict(scores(ranks))
        for metric in ("hits@4", "hits@10", "mrr@10"):
            even, odd = scores(ranks[0::2])[metric], scores(ranks[1::2])[metric]
            row[f"{metric} even/odd"] = f"{even:.3f} / {odd:.3f}"
        return row


def variants() -> dict[str, Variant]:
    """The earlier rankings, then one lever at a time on the one shipped before (BM25 over
    whole articles at 1.5), then on the shipped one (+ article vectors), dates ignored; the
    article levers last with dates used too."""
    shipped = Variant()
    earlier = replace(shipped, article_weight=1.5, article_dense_weight=0.0)
    before = replace(earlier, article_weight=0.0)
    k1_2 = (("k1", 2.0), ("b", 0.9))
    rows = {
        "passages only (article support 0.3)": before,
        "earlier: + whole-article BM25 (title x3, k1 1.5, b 0.9), weight 1.5": earlier,
        "**shipped: whole-article BM25 2.0 + article vectors 1.0**": shipped,
        "earlier, passage BM25 k1 1.2 b 0.75": replace(earlier, passage_bm25=(("k1", 1.2),)),
        "earlier, passage BM25 k1 1.5 b 0.9": replace(earlier, passage_bm25=(("b", 0.9),)),
        "earlier, passage BM25 without stemming": replace(earlier, passage_index="unstemmed"),
        "earlier, passage BM25 reads title and heading": replace(earlier, passage_index="titled"),
        "earlier, article index: text only": replace(earlier, article_index="text"),
        "earlier, article index: title x1": replace(earlier, article_index="title x1"),
        "earlier, article index: title x5": replace(earlier, article_index="title x5"),
        "earlier, article BM25 k1 1.5 b 0.75": replace(
            earlier, article_bm25=(("k1", 1.5), ("b", 0.75))),
        "earlier, article BM25 k1 2.0 b 0.9": replace(earlier, article_bm25=k1_2),
        "earlier, article RM3 (3 docs, 10 terms, 0.7 original)": replace(
            earlier, article_rm3=(3, 10, 0.7)),
        "earlier, convex fusion of passages, dense 0.3": replace(
            earlier, fusion="convex", dense_share=0.3),
        "earlier, convex fusion of passages, dense 0.5": replace(earlier, fusion="convex"),
        "earlier, dense query without time phrases": replace(earlier, query="no time phrases"),
        "earlier, both queries without time phrases": replace(
            earlier, query="no time phrases", query_both_sides=True),
        "earlier, dense query without time phrases and question words": replace(
            earlier, query="no time phrases or question words"),
        "earlier, article: best passage only": replace(earlier, aggregate="max"),
        "earlier, article: best + half the next": replace(
            earlier, aggregate="max + half the next"),
        "earlier, article: soft count of all its passages": replace(
            earlier, aggregate="soft count"),
        "earlier, one fusion of article lists (dense, passage BM25, article BM25)": replace(
            earlier, article_fusion="lists"),
        "earlier, + titles' vectors 0.5": replace(earlier, title_dense_weight=0.5),
        "earlier, candidate depth 30": replace(earlier, depth=30),
        "earlier, candidate depth 100": replace(earlier, depth=100),
        "earlier, + article vectors 0.5": replace(earlier, article_dense_weight=0.5),
        "earlier, + article vectors 1.0": replace(earlier, article_dense_weight=1.0),
        "earlier, whole-article BM25 2.0 (no article vectors)": replace(
            earlier, article_weight=2.0),
        "shipped, article vectors 0.5": replace(shipped, article_dense_weight=0.5),
        "shipped, article vectors 1.5": replace(shipped, article_dense_weight=1.5),
        "shipped, whole-article BM25 1.5": replace(shipped, article_weight=1.5),
        "shipped, whole-article BM25 2.5": replace(shipped, article_weight=2.5),
        "shipped, article BM25 k1 2.0 b 0.9": replace(shipped, article_bm25=k1_2),
        "shipped, article index: title x5": replace(shipped, article_index="title x5"),
        "shipped, both queries without time phrases": replace(
            shipped, query="no time phrases", query_both_sides=True),
        "shipped, article support 0": replace(shipped, support=0.0),
        "shipped, rrf_k 20": replace(shipped, rrf_k=20),
    }
    dated = {"passages only (article support 0.3)": before, "earlier": earlier,
             "earlier, + article vectors 1.0": replace(earlier, article_dense_weight=1.0),
             "earlier, whole-article BM25 2.0": replace(earlier, article_weight=2.0),
             "**shipped**": shipped,
             "shipped, article vectors 0.5": replace(shipped, article_dense_weight=0.5),
             "shipped, article vectors 1.5": replace(shipped, article_dense_weight=1.5),
             "shipped, whole-article BM25 2.5": replace(shipped, article_weight=2.5)}
    rows.update({f"dates used: {name}": replace(v, dates=True) for name, v in dated.items()})
    return rows


def main() -> None:
    args = index_arguments(__doc__)
    questions = [q for q in load_questions(args.questions) if q.get("gold_articles")]
    bench = Bench(Dossier(load_settings(data_dir=args.data_dir)), questions)
    rows = [{"variant": name, **bench.measure(v)} for name, v in variants().items()]
    columns = ["variant", "hits@4", "hits@10", "mrr@10", "hits@4 even/odd",
               "hits@10 even/odd", "mrr@10 even/odd"]
    report("ranking-levers", {"questions": len(questions), "rows": rows},
           markdown_table(rows, columns))


if __name__ == "__main__":
    main()
