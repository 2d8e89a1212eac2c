"""`dossier eval`: metric arithmetic on fakes, then real retrieval on a hand-made corpus."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.errors import BadQuestions
from bot.evaluate import (
    evaluate,
    first_gold_rank,
    fold,
    load_questions,
    percentile,
    quotes_contain_answer,
)
from bot.factory import Dossier
from bot.models import Answer, ArticleRef, Citation
from bot.retrieval import Retrieved
from bot.settings import load_settings
from index.embeddings import SentenceEmbeddings
from index.models import Article
from index.store import StoredPassage
from tests.support import PROJECT

# --- metric arithmetic, on fakes whose ranks and quotes are set by hand -------------------


@dataclass
class FakeRetriever:
    """Returns, for each question, passages of the articles listed for it, in that order."""

    ranking: dict[str, list[str]]
    asked_on: dict[str, date | None] = field(default_factory=dict)

    def retrieve(
        self, query: str, k: int | None = None, *, as_of: date | None = None
    ) -> list[Retrieved]:
        self.asked_on[query] = as_of
        return [
            Retrieved(StoredPassage(f"{a}:{i}", a, 0, 1, "x", None, ()), 0.0, 0.0, i)
            for i, a in enumerate(self.ranking[query][:k])
        ]


@dataclass
class FakeAnswerer:
    answers: dict[str, Answer]
    asked_on: dict[str, date | None] = field(default_factory=dict)

    def ask(self, question: str, *, as_of: date | None = None) -> Answer:
        self.asked_on[question] = as_of
        # evaluate() asks one warm-up question of its own first: nothing to say to it.
        return self.answers.get(question) or Answer(question, "no", "extractive", False)


@dataclass
class FakeStore:
    articles: dict[str, Article] = field(default_factory=dict)

    def get_articles(self, ids: list[str]) -> dict[str, Article]:
        return {i: self.articles[i] for i in ids if i in self.articles}


@dataclass
class FakeDossier:
    retriever: FakeRetriever
    answerer: FakeAnswerer
    store: FakeStore


TEXT = "Officials said the “Artemis II” crew will fly in  April 2026, NASA confirmed."


def _citation(n: int, quote: str, start: int) -> Citation:
    ref = ArticleRef("a", "A", None, None, None, None)
    return Citation(n, quote, start, start + len(quote), ref)


def _answered(question: str, *citations: Citation) -> Answer:
    return Answer(question, "…", "extractive", True, list(citations))


def test_metrics_match_hand_computed_values() -> None:
    article = Article("a", "A", TEXT)
    good = _citation(1, TEXT[:40], 0)
    # Offsets one character off: the quote does not stand where it claims.
    bad = Citation(2, TEXT[10:30], 11, 31, good.article)
    fillers = [f"f{i}" for i in range(9)]
    ranking = {
        "q1": ["a", *fillers],  # gold "a" at rank 1
        "q2": ["f0", "f1", "b", *fillers[2:]],  # gold "b" at rank 3
        "q3": [*fillers[:6], "c", "f6", "f7", "f8"],  # gold "c" at rank 7: a hit @10, not @4
        "q4": fillers,  # gold "d" not retrieved
        "q5": fillers,  # no gold: answer metrics only
    }
    answers = {
        # The answer "Artemis II" matches “Artemis II” in the quote: quote marks ignored.
        "q1": _answered("q1", good),
        "q2": _answered("q2", bad),  # answer not in the (misplaced) quote
        "q3": Answer("q3", "no", "extractive", False),
        "q4": _answered("q4", _citation(1, TEXT[40:], 40)),  # "in  April": spaces folded
        "q5": _answered("q5", good),  # no answers given: cannot count as containing one
    }
    questions: list[dict[str, Any]] = [
        {"id": "q1", "question": "q1", "answers": ["artemis ii"], "gold_articles": ["a"]},
        {"id": "q2", "question": "q2", "answers": ["NASA"], "gold_articles": ["b", "x"]},
        {"id": "q3", "question": "q3", "answers": ["Artemis"], "gold_articles": ["c"]},
        {"id": "q4", "question": "q4", "answers": ["in April 2026"], "gold_articles": ["d"]},
        {"id": "q5", "question": "q5"},
    ]
    dossier = FakeDossier(FakeRetriever(ranking), FakeAnswerer(answers), FakeStore({"a": article}))

    report = evaluate(dossier, questions)  # type: ignore[arg-type]

    assert [r.rank for r in report.results] == [1, 3, 7, None, None]
    out = report.to_json()
    assert out["questions"] == 5 and out["with_gold"] == 4
    assert out["hits@4"] == pytest.approx(2 / 4)  # ranks 1 and 3
    assert out["hits@10"] == pytest.approx(3 / 4)  # ranks 1, 3 and 7
    assert out["mrr@10"] == pytest.approx(round((1 + 1 / 3 + 1 / 7 + 0) / 4, 4))
    assert out["answer_in_quotes"] == pytest.approx(2 / 5)  # q1 and q4
    assert out["answered"] == pytest.approx(4 / 5)  # all but q3
    assert out["quotes"] == 4
    assert out["verbatim"] == pytest.approx(3 / 4)  # the misplaced quote fails
    assert out["missed"] == ["q4"]
    assert out["p50_ms"] is not None and out["p95_ms"] >= out["p50_ms"]


def test_no_gold_and_no_quotes_give_null_not_zero() -> None:
    dossier = FakeDossier(
        FakeRetriever({"q": []}),
        FakeAnswerer({"q": Answer("q", "no", "extractive", False)}),
        FakeStore(),
    )
    out = evaluate(dossier, [{"question": "q", "answers": ["x"]}]).to_json()  # type: ignore[arg-type]
    assert out["hits@4"] is None and out["mrr@10"] is None and out["verbatim"] is None
    assert out["answered"] == 0.0 and out["answer_in_quotes"] == 0.0


def test_a_question_is_retrieved_and_answered_as_of_its_date() -> None:
    """News questions are asked on a day ("this week"): the record's `date` is that day."""
    dossier = FakeDossier(
        FakeRetriever({"dated": ["a"], "undated": ["a"]}), FakeAnswerer({}), FakeStore()
    )
    questions: list[dict[str, Any]] = [
        {"question": "dated", "date": "2022/06/16"},  # the benchmark's own spelling
        {"question": "undated"},
    ]
    evaluate(dossier, questions)  # type: ignore[arg-type]
    for seen in (dossier.retriever.asked_on, dossier.answerer.asked_on):
        assert seen["dated"] == date(2022, 6, 16)
        assert seen["undated"] is None  # the retriever then takes today


def test_helpers() -> None:
    assert first_gold_rank(["x", "y", "g", "g"], ["g", "h"]) == 3
    assert first_gold_rank(["x"], []) is None
    assert fold("  It’s  “Top\nGun” ") == "its top gun"
    assert quotes_contain_answer(["He said: 'NEW Jersey  and Oregon'."], ["new jersey and oregon"])
    assert not quotes_contain_answer(["New Jersey and Oregon"], ["New Jersey & Oregon"])
    assert not quotes_contain_answer(["anything"], ["", "  "])
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


# --- questions files ---------------------------------------------------------------------


def test_load_questions_reads_jsonl_and_gzip(tmp_path: Path) -> None:
    lines = [{"question": "Who?", "answers": ["Me"]}, {"id": "x", "question": "Why?"}]
    plain = tmp_path / "q.jsonl"
    plain.write_text("\n".join(json.dumps(q) for q in lines) + "\n\n", encoding="utf-8")
    packed = tmp_path / "q.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        got = load_questions(path)
        assert [q["id"] for q in got] == ["1", "x"]
        assert got[0]["answers"] == ["Me"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "ok"}\n{"question": "broken"\n', "q.jsonl:2: not valid JSON"),
        ('["a list"]\n', "q.jsonl:1: expected a JSON object"),
        ('{"answers": ["x"]}\n', 'q.jsonl:1: "question" must be a non-empty string'),
        ('{"question": "q", "gold_articles": "a"}\n', '"gold_articles" must be a list'),
        ('{"question": "q", "date": "last Tuesday"}\n', '"date" must be a day like'),
        ("\n  \n", "no questions in"),
    ],
)
def test_load_questions_names_the_bad_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadQuestions, match=message.replace("[", r"\[")) as caught:
        load_questions(path)
    assert "\n" not in str(caught.value)


def test_load_questions_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadQuestions, match="no such questions file"):
        load_questions(tmp_path / "absent.jsonl")


# --- real retrieval and answers on a hand-made corpus ------------------------------------

ARTICLES = [
    {
        "id": "iceland-volcano",
        "title": "Volcano erupts on Iceland's Reykjanes peninsula",
        "text": (
            "A volcano erupted on Iceland's Reykjanes peninsula late on Monday, sending "
            "fountains of lava into the night sky.\n\n"
            "Authorities evacuated the fishing town of Grindavik hours before the eruption "
            "began, after weeks of earthquakes shook the area.\n\n"
            "Grindavik is home to about 3,700 people, most of whom now stay with relatives "
            "in Reykjavik."
        ),
    },
    {
        "id": "perseverance-rover",
        "title": "Perseverance rover seals a new rock sample",
        "text": (
            "NASA's Perseverance rover drilled into a rock in Jezero Crater on Mars and sealed "
            "a core sample of sedimentary rock in a titanium tube.\n\n"
            "Scientists hope the sample holds signs of ancient microbial life from the time "
            "when the crater was a lake."
        ),
    },
    {
        "id": "curiosity-rover",
        "title": "Curiosity rover keeps climbing Mount Sharp",
        "text": (
            "NASA's Curiosity rover is still climbing Mount Sharp inside Gale Crater on Mars, "
            "more than a decade after it landed.\n\n"
            "The rover has crossed layers of clay and sulfate minerals that record how the "
            "Martian climate dried out."
        ),
    },
    {
        "id": "chess-final",
        "title": "Gukesh wins the world chess championship",
        "text": (
            "Gukesh Dommaraju won the world chess championship in Singapore on Thursday, "
            "beating the defending champion Ding Liren in the fourteenth and final game.\n\n"
            "At eighteen, Gukesh is the youngest undisputed world champion in the history "
            "of the game."
        ),
    },
    {
        "id": "lyon-bakery",
        "title": "Lyon bakery wins the city's baguette prize",
        "text": (
            "A small bakery in Lyon's Croix-Rousse district won this year's prize for the "
            "city's best traditional baguette.\n\n"
            "The baker, Amandine Roux, said her secret is a slow overnight fermentation of "
            "the dough."
        ),
    },
]

# Expected ranks of the first gold article's passage (each article is one short passage):
#   volcano  -> rank 1 (the question names the volcano, Iceland and the evacuation)
#   rover    -> rank 2 (gold is the *other* Mars rover article; Perseverance is rank 1)
#   chess    -> rank 1 (one of two gold ids; the other is not in the corpus)
#   baguette -> None   (the only gold id is not in the corpus)
# Hits@4 = Hits@10 = 3/4; MRR@10 = (1 + 1/2 + 1 + 0) / 4 = 0.625.
QUESTIONS = [
    {"id": "volcano", "question": "Which town was evacuated before the volcano erupted in "
     "Iceland?", "answers": ["Grindavik"], "gold_articles": ["iceland-volcano"]},
    {"id": "rover", "question": "What did the Perseverance rover seal in a titanium tube?",
     "answers": ["core sample"], "gold_articles": ["curiosity-rover"]},
    {"id": "chess", "question": "Who won the world chess championship in Singapore?",
     "answers": ["Gukesh"], "gold_articles": ["missing-article", "chess-final"]},
    {"id": "baguette", "question": "Which bakery won the prize for the best baguette?",
     "answers": ["Croix-Rousse"], "gold_articles": ["not-in-the-corpus"]},
    {"id": "baker", "question": "What is the baker's secret for her baguette dough?",
     "answers": ["overnight fermentation"]},
    {"id": "offtopic", "question": "How do I renew a Portuguese driving licence online?",
     "answers": ["licence"]},
]
EXPECTED_RANKS = [1, 2, 1, None, None, None]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("eval")
    articles = folder / "articles.jsonl"
    articles.write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    questions = folder / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return articles, questions


@pytest.fixture(scope="module")
def in_process(
    dataset: tuple[Path, Path],
    embedder: SentenceEmbeddings,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    articles, questions = dataset
    dossier = Dossier(
        load_settings(data_dir=tmp_path_factory.mktemp("eval-data")), embedder=embedder
    )
    dossier.ingestor().run([articles])
    report = evaluate(dossier, load_questions(questions))
    assert [r.rank for r in report.results] == EXPECTED_RANKS
    return report.to_json()


@pytest.mark.slow
def test_real_retrieval_matches_hand_computed_ranks(in_process: dict[str, Any]) -> None:
    assert in_process["questions"] == 6 and in_process["with_gold"] == 4
    assert in_process["hits@4"] == 0.75
    assert in_process["hits@10"] == 0.75
    assert in_process["mrr@10"] == 0.625
    assert in_process["missed"] == ["baguette"]
    # Every quote the answers cite stands verbatim in its article.
    assert in_process["quotes"] > 0 and in_process["verbatim"] == 1.0
    # The five on-topic questions are answered with their answer quoted; the off-topic
    # one is declined (answered = 5/6, answer_in_quotes = 5/6).
    assert in_process["answered"] == pytest.approx(5 / 6, abs=1e-4)
    assert in_process["answer_in_quotes"] == pytest.approx(5 / 6, abs=1e-4)


@pytest.mark.slow
def test_cli_eval_json_reports_the_same_metrics(
    dataset: tuple[Path, Path], in_process: dict[str, Any], tmp_path: Path
) -> None:
    articles, questions = dataset
    result = _dossier_cli(
        ["--data-dir", str(tmp_path / "cli"), "eval", str(questions), "--corpus", str(articles),
         "--json"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    contract = {"questions", "hits@4", "hits@10", "mrr@10", "answer_in_quotes", "verbatim",
                "answered", "p50_ms", "p95_ms"}
    assert contract <= set(out)
    for key in contract - {"p50_ms", "p95_ms"}:
        assert out[key] == in_process[key], key
    assert 0 < out["p50_ms"] <= out["p95_ms"]


def test_cli_eval_bad_questions_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "fine"}\nnot json\n', encoding="utf-8")
    # A relative path keeps the line short of the console width rich wraps at.
    result = _dossier_cli(["eval", "q.jsonl", "--corpus", "."], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dossier: q.jsonl:2: not valid JSON (Expecting value)"
    ]


def _dossier_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
