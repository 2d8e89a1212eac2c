"""The hybrid retriever's ranking logic: articles interleaved, dates weighed, as of a day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bot.retrieval import HybridRetriever
from bot.timeliness import Timeliness
from index.chunking import chunk_article
from index.models import Article
from index.store import PassageStore, make_client
from tests.support.fakes import FakeEmbeddings


def _retriever(
    tmp_path: Path, embedder: FakeEmbeddings, *articles: Article, **options: object
) -> HybridRetriever:
    store = PassageStore(
        make_client(tmp_path / "chroma"), "dossier", embedder.model_name, tmp_path / "keyword"
    )
    store.begin_write()
    for article in articles:
        chunks = chunk_article(article, embedder.count_tokens, max_tokens=16)
        store.replace_article(article, chunks, embedder.encode([c.text for c in chunks]))
    store.finish_write()
    return HybridRetriever(store=store, embedder=embedder, **options)


def _article(article_id: str, text: str, published: str | None = None) -> Article:
    return Article(id=article_id, title="", text=text, published=published)


STRIKE = "Workers at the Atacama lithium mine went on strike over pay and closed the mine."


def _two_reports_of_one_story(tmp_path: Path, embedder: FakeEmbeddings) -> HybridRetriever:
    return _retriever(
        tmp_path, embedder,
        _article("january-strike", STRIKE, "2022-01-10"),
        _article("june-strike", STRIKE, "2022-06-14"),
    )


def _assert_the_asking_day_decides(retriever: HybridRetriever) -> None:
    question = "Why did the lithium mine close?"

    def first(asked_on: date) -> str:
        return retriever.retrieve(question, k=2, as_of=asked_on)[0].passage.article_id

    assert first(date(2022, 6, 16)) == "june-strike"
    assert first(date(2022, 1, 12)) == "january-strike"


def test_the_asking_day_decides_between_two_reports_of_the_same_story(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    _assert_the_asking_day_decides(_two_reports_of_one_story(tmp_path, fake_embedder))


def test_a_time_phrase_favours_articles_inside_its_window(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    retriever = _retriever(
        tmp_path, fake_embedder,
        # The better textual match, but six weeks old.
        _article("spring-vote", "The council voted to close the bridge. The council vote "
                 "to close the bridge was unanimous, the council said.", "2022-05-01"),
        _article("this-week", "Engineers inspected the bridge; the council vote followed.",
                 "2022-06-13"),
        _article("unrelated", "Rain is expected across the region on Sunday.", "2022-06-14"),
        timeliness=Timeliness(recency_weight=0.0, half_life_days=30.0, phrase_boost=1.0),
    )
    asked_on = date(2022, 6, 16)

    def first(question: str) -> str:
        return retriever.retrieve(question, k=3, as_of=asked_on)[0].passage.article_id

    assert first("Why did the council vote to close the bridge?") == "spring-vote"
    assert first("Why did the council vote to close the bridge this week?") == "this-week"


def test_top_passages_cover_several_articles_before_seconds_of_one(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    long_report = "\n\n".join(
        f"Copper prices rose again on day {n}: copper smelters and copper traders cheered."
        for n in range(1, 6)
    )
    retriever = _retriever(
        tmp_path, fake_embedder,
        _article("copper-diary", long_report),
        _article("copper-brief", "Copper prices rose, traders said."),
        _article("copper-chile", "Chile exports more copper than any other country."),
        per_article=3,
        # passages alone: the searches over whole articles are tested below
        article_keyword_weight=0.0, article_dense_weight=0.0,
        timeliness=Timeliness(0.0, 30.0, 0.0),
    )
    got = retriever.retrieve("Why did copper prices rise?", k=10)
    articles = [r.passage.article_id for r in got]

    assert len(set(articles[:3])) == 3  # every article's best passage comes first
    assert articles[0] == "copper-diary"  # its passages say "copper" most
    assert articles.count("copper-diary") == 3  # at most per_article from one article
    assert [r.rank for r in got] == list(range(len(got)))
    # Within one article its passages stay best first.
    diary = [r.fused for r in got if r.passage.article_id == "copper-diary"]
    assert diary == sorted(diary, reverse=True)


class _CountedReads:
    """A Chroma collection that notes each read made through it."""

    def __init__(self, collection: object, reads: list[str], name: str) -> None:
        self._collection, self._reads, self._name = collection, reads, name

    def __getattr__(self, method: str) -> object:
        real = getattr(self._collection, method)
        if method not in ("get", "query", "count", "peek", "get_collection"):
            return real

        def counted(*args: object, **kwargs: object) -> object:
            self._reads.append(f"{self._name}.{method}")
            return real(*args, **kwargs)

        return counted


def test_a_question_costs_one_vector_query_and_one_generation_read_whatever_the_depth(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    retriever = _retriever(
        tmp_path, fake_embedder,
        *(_article(f"strike-{n}", f"{STRIKE} Day {n} of the strike.", f"2022-06-{n:02}")
          for n in range(1, 21)),
        dense_depth=50, keyword_depth=50,
        # twenty same-worded articles: only their dates differ
        article_keyword_weight=0.0, article_dense_weight=0.0,
    )
    # The derived indexes are loaded, and the kept passages' articles read once.
    retriever.retrieve("Why did the lithium mine close?", as_of=date(2022, 6, 21))
    reads: list[str] = []
    store = retriever.store
    store.passages = _CountedReads(store.passages, reads, "passages")  # type: ignore[assignment]
    store.articles = _CountedReads(store.articles, reads, "articles")  # type: ignore[assignment]
    store.client = _CountedReads(store.client, reads, "client")
    found = retriever.retrieve("Why did the lithium mine close?", as_of=date(2022, 6, 21))
    assert found and found[0].passage.article_id == "strike-20"  # the dates were weighed
    # No count(), no get: dates, offsets and sentence spans come from the passage table,
    # texts from the articles already in memory; the generation is read once.
    assert reads == ["client.get_collection", "passages.query"], reads
    assert all(p.passage.text for p in found)
    articles = store.get_articles([p.passage.article_id for p in found])
    for r in found:
        passage = r.passage
        assert articles[passage.article_id].text[passage.start : passage.end] == passage.text
        assert passage.sentences and all(
            passage.start <= s < e <= passage.end for s, e in passage.sentences)


def test_passages_indexed_before_they_carried_dates_are_dated_from_the_registry(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    retriever = _two_reports_of_one_story(tmp_path, fake_embedder)
    passages = retriever.store.passages
    ids = passages.get()["ids"]
    passages.update(ids=ids, metadatas=[{"published": None}] * len(ids))  # None drops a key
    assert not any("published" in (m or {})
                   for m in passages.get(include=["metadatas"])["metadatas"] or [])
    _assert_the_asking_day_decides(retriever)


def test_an_article_about_the_question_beats_a_stray_passage_that_shares_its_words(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    story = Article(
        id="peru-vote",
        title="Peru's congress removes president Castillo",
        text="\n\n".join([
            "Lawmakers in Lima voted Castillo out by a wide margin on Wednesday.",
            "Castillo had tried to dissolve the legislature hours earlier, and his own "
            "ministers resigned one after another.",
            "Congress then swore in his deputy as the new head of state.",
            "Peru has had six leaders in five years; Castillo was the fifth.",
        ]),
    )
    # A long article about something else, with one sentence that shares every word.
    season = [f"The club won match {n} of the season and the fans sang all night."
              for n in range(1, 9)]
    season.insert(4, "Congress in Peru, remove president Castillo, the fans chanted.")
    stray = _article("club-season", "\n\n".join(season))
    question = "Why did congress in Peru remove president Castillo?"
    others = [_article(f"other-{n}", f"Markets moved on day {n} as traders waited.")
              for n in range(4)]
    retriever = _retriever(
        tmp_path, fake_embedder, story, stray, *others,
        article_support=0.0, timeliness=Timeliness(0.0, 30.0, 0.0),
    )

    def first(**options: object) -> str:
        ranked = retriever.model_copy(update=options).retrieve(question, k=3)
        return ranked[0].passage.article_id

    passages_alone = {"article_keyword_weight": 0.0, "article_dense_weight": 0.0}
    assert first(**passages_alone) == "club-season"  # its one passage matches best
    assert first() == "peru-vote"  # the whole article, and its title, are about it
    # Each search over whole articles finds it alone: its words, and its meaning (the
    # mean of its passages' vectors), are spread over its paragraphs.
    assert first(article_dense_weight=0.0) == "peru-vote"
    assert first(article_keyword_weight=0.0) == "peru-vote"
