"""A BM25 keyword index over the passages, kept beside Chroma and tagged with its generation."""

from __future__ import annotations

import json
import logging
import math
import re
from array import array
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import bm25s
import bm25s.selection
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from index.atomic_folder import replace_folder
from index.heap import return_freed_memory

log = logging.getLogger(__name__)

_STEMMER = Stemmer.Stemmer("english")
# What bm25s.tokenize reads as words, and drops, with stopwords="en".
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
_META = "dossier.json"
# Passages tokenized at a time while building: only their word ids are kept.
_BUILD_PAGE = 2000

# The article index sees each article whole, its title three times over: a title word
# then weighs like a word repeated in the text (field weighting by repetition). k1 1.5
# and b 0.9 (length normalised harder than the passages' 0.75: whole articles vary far
# more in length than passages) were chosen on both halves of the dev questions with
# their dates removed (BENCHMARKS.md, "Ranking without dates").
ARTICLE_TITLE_REPEATS = 3
ARTICLE_BM25 = {"k1": 1.5, "b": 0.9}


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's terms as bm25s.tokenize gives them (its word pattern, lowercase, its
    English stop words out, stemmed), without its per-call cost: an answer tokenizes
    every candidate sentence alone, and bm25s.tokenize made three progress-bar objects
    per call even with the bar off (a tenth of a first-time answer's time)."""
    out = []
    for text in texts:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        out.append(_STEMMER.stemWords(words) if words else [])
    return out


def article_text(title: str, text: str) -> str:
    """What the article keyword index reads for one article: title (weighted) and text."""
    return "\n".join([title.strip()] * ARTICLE_TITLE_REPEATS + [text]) if title.strip() else text


class KeywordSearch(Protocol):
    """What retrieval asks of a keyword index. Today's is `KeywordIndex` (bm25s, in each
    process); a server-side one (Chroma's distributed BM25 sparse vectors, README
    "Scaling out") can stand in for it without retrieval changing."""

    generation: str

    def search(self, query: str, depth: int) -> list[tuple[str, float]]:
        """Passage ids and scores, best first; only passages sharing a term."""
        ...

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """How rare each term is among the passages (what the answer's reader weighs)."""
        ...


class KeywordIndex:
    """BM25 over passage (or whole-article) texts; `ids[i]` is the id of row i.

    `generation` names the store state it was built from: a mismatch with the store's
    generation (an ingest that crashed half-way, or another process that ingested into a
    shared Chroma server) means it must be rebuilt before it is trusted.
    """

    def __init__(self, ids: list[str], retriever: bm25s.BM25 | None, generation: str) -> None:
        self.ids = ids
        self.generation = generation
        self._retriever = retriever

    @classmethod
    def build(
        cls, ids: Sequence[str], texts: Sequence[str], generation: str, **bm25: float
    ) -> KeywordIndex:
        """`bm25`: k1 and b, when not bm25s's defaults (1.5, 0.75)."""
        return cls.build_streamed(zip(ids, texts, strict=True), generation, **bm25)

    @classmethod
    def build_streamed(cls, passages: Iterable[tuple[str, str]], generation: str,
                       **bm25: float) -> KeywordIndex:
        """Build from (id, text) pairs read one page at a time: texts are tokenized page by
        page and only their word ids kept (a few bytes a word), never every text at once.
        `bm25`: k1 and b, when not bm25s's defaults."""
        ids: list[str] = []
        vocab: dict[str, int] = {}
        # A passage's word ids as 4-byte machine ints: a list of Python ints took 8 bytes a
        # word plus the list's own, the most of a build's memory (BENCHMARKS.md). bm25s
        # only iterates over them and counts them.
        corpus: list[array[int]] = []
        pairs = iter(passages)
        while page := list(islice(pairs, _BUILD_PAGE)):
            for passage_id, tokens in zip(
                (pid for pid, _ in page), tokenize([text for _, text in page]), strict=True
            ):
                ids.append(passage_id)
                corpus.append(array("i", [vocab.setdefault(token, len(vocab))
                                          for token in tokens]))
        if not ids:
            return cls([], None, generation)
        # What reading the texts freed goes back before bm25s allocates its score arrays.
        return_freed_memory()
        # scipy's CSC build, not bm25s's numpy one: the same arrays (the column pointers in
        # int32 while they fit), at 131 MB less peak for 141k passages (BENCHMARKS.md).
        retriever = bm25s.BM25(csc_backend="scipy", **bm25)
        retriever.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=vocab),
                        show_progress=False)
        return cls(ids, retriever, generation)

    def search(self, query: str, depth: int) -> list[tuple[str, float]]:
        """Ids (passages or articles) and BM25 scores, best first; only those sharing a term."""
        if self._retriever is None or not self.ids:
            return []
        vocab = self._retriever.vocab_dict
        terms = [t for t in tokenize([query])[0] if t in vocab]
        if not terms:
            return []
        # What BM25.retrieve does for one query, without the thread pool it starts and
        # stops on every call (a new thread per search: a tenth of a retrieve's time).
        scores, rows = bm25s.selection.topk(
            self._retriever.get_scores(terms), min(depth, len(self.ids)), sorted=True
        )
        return [
            (self.ids[int(row)], float(score))
            for row, score in zip(rows, scores, strict=True)
            if score > 0
        ]

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """How rare each (tokenized) term is among the passages: BM25's inverse document
        frequency, highest for a term no passage holds."""
        total = len(self.ids)
        if self._retriever is None or not total:
            return {term: 0.0 for term in terms}
        vocab = self._retriever.vocab_dict
        # bm25s keeps one column per term in CSC form: its length is the term's document count
        starts = self._retriever.scores["indptr"]
        out = {}
        for term in terms:
            column = vocab.get(term)
            count = 0 if column is None else int(starts[column + 1] - starts[column])
            out[term] = math.log((total - count + 0.5) / (count + 0.5) + 1.0)
        return out

    def save(self, folder: Path) -> None:
        """Write atomically: a crash mid-save leaves the previous index, never half of one."""

        def write(staging: Path) -> None:
            if self._retriever is not None:
                self._retriever.save(str(staging), show_progress=False)
            meta: dict[str, Any] = {"generation": self.generation, "ids": self.ids}
            (staging / _META).write_text(json.dumps(meta), encoding="utf-8")

        replace_folder(folder, write)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none or it is unreadable (then it says why
        in the log: the caller rebuilds it, and a damaged disk should not go unnoticed)."""
        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            retriever = None
            if meta["ids"]:
                retriever = bm25s.BM25.load(str(folder), show_progress=False)
            return cls(list(meta["ids"]), retriever, str(meta["generation"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("keyword index in %s is unreadable (%r): rebuilding it", folder, exc)
            return None
