"""Ingest: incremental and idempotent, no orphans, prune, duplicates, bad files skipped."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
from pathlib import Path

import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from index.chunking import embedding_texts
from index.embeddings import SentenceEmbeddings
from index.ingest import Ingestor
from index.loaders import iter_articles
from index.models import Article
from tests.support import REALTIMEQA, SEED
from tests.support.fakes import FakeEmbeddings

STORY = "Storms hit the coast on Monday. Rain fell for three days.\n\nFlood warnings stayed."


def _dossier(data_dir: Path, embedder: SentenceEmbeddings) -> Dossier:
    return Dossier(load_settings(data_dir=data_dir), embedder=embedder)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    (folder / "storms.md").write_text(f"---\ntitle: Storms\nauthor: A. Writer\n---\n{STORY}\n")
    return folder


def _ingest(dossier: Dossier, corpus: Path, **kwargs: bool) -> Ingestor:
    ingestor = dossier.ingestor()
    report = ingestor.run([corpus], corpus_root=corpus, **kwargs)
    ingestor.last_report = report  # type: ignore[attr-defined]
    return ingestor


def test_reingesting_an_unchanged_corpus_embeds_nothing(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings
) -> None:
    dossier = _dossier(isolated, fake_embedder)
    first = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    calls = fake_embedder.calls
    second = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 2)
    assert fake_embedder.calls == calls  # not one model call
    assert second.embedded == 0
    assert second.passages == first.passages


def test_a_changed_article_is_replaced_without_orphans(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings
) -> None:
    dossier = _dossier(isolated, fake_embedder)
    dossier.ingestor().run([corpus], corpus_root=corpus)
    (corpus / "storms.md").write_text("---\ntitle: Storms\n---\nA calm week followed.\n")
    report = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    [storm_id] = [r.id for r in dossier.store.records().values() if r.title == "Storms"]
    ids = dossier.store.passages.get(where={"article_id": storm_id})["ids"]
    stored = dossier.store.get_passages(ids)  # texts cut from the article
    assert [p.text for p in stored.values()] == ["A calm week followed."]
    ids = [pid for pid, _ in dossier.store.iter_passages()]
    assert sorted(ids) == sorted(dossier.store.keyword_index().ids)  # keyword index in sync


def test_prune_removes_articles_whose_files_are_gone(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings
) -> None:
    dossier = _dossier(isolated, fake_embedder)
    dossier.ingestor().run([corpus], corpus_root=corpus)
    (corpus / "storms.md").unlink()
    kept = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert kept.removed == 0 and len(dossier.store.records()) == 2
    pruned = dossier.ingestor().run([corpus], corpus_root=corpus, prune=True)
    assert pruned.removed == 1
    assert [r.title for r in dossier.store.records().values()] == [
        "Mexico and Canada Plan Joint Action on Critical Minerals"
    ]
    assert not any("storm" in pid for pid in dossier.store.keyword_index().ids)


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings
) -> None:
    (corpus / "copy-of-seed.txt").write_bytes(SEED.read_bytes())
    (corpus / "blank.txt").write_text(" \n\t\n")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    (corpus / "deep.html").write_text("<div>" * 100_000 + "deep" + "</div>" * 100_000)
    outside = corpus.parent / "secret.txt"
    outside.write_text("A secret outside the corpus folder. " * 5)
    (corpus / "link.txt").symlink_to(outside)
    report = _dossier(isolated, fake_embedder).ingestor().run([corpus], corpus_root=corpus)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert report.added == 2
    assert set(reasons) >= {"blank.txt", "binary.txt", "broken.pdf", "link.txt"}, reasons
    # The same text under two names is indexed once; the other name says which it copies.
    duplicates = {name: r for name, r in reasons.items() if "indexed once" in r}
    assert len(duplicates) == 1
    [(skipped_name, reason)] = duplicates.items()
    other = ({SEED.name, "copy-of-seed.txt"} - {skipped_name}).pop()
    assert other in reason
    assert all("\n" not in reason and reason for reason in reasons.values())


def test_articles_jsonl_lines_become_articles(tmp_path: Path, isolated: Path,
                                              fake_embedder: FakeEmbeddings) -> None:
    path = tmp_path / "news.jsonl"
    lines = [
        {"id": "one", "title": "One", "url": "https://example.com/one", "authors": ["A"],
         "published": "2022-06-01", "text": STORY},
        {"id": "two", "title": "Two", "url": None, "authors": [], "published": None,
         "text": "Markets rose on Tuesday after the report. Investors cheered."},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n")
    dossier = _dossier(isolated, fake_embedder)
    report = dossier.ingestor().run([path])
    assert report.added == 2 and len(report.skipped) == 1
    assert "line 3" in report.skipped[0].reason
    records = dossier.store.records()
    assert {r.url for r in records.values()} == {"https://example.com/one", None}


@pytest.mark.slow
def test_passages_are_exact_and_fit_the_model_window(embedder: SentenceEmbeddings) -> None:
    """Seed article and the first 200 benchmark articles: offsets exact, nothing truncated."""
    sources: list[Path] = [SEED]
    if (REALTIMEQA / "articles.jsonl.gz").exists():
        sources.append(REALTIMEQA / "articles.jsonl.gz")
    items = iter_articles(sources)
    articles = [a for a in itertools.islice(items, 201) if isinstance(a, Article)]
    assert len(articles) >= 1
    ingestor = Ingestor(store=None, embedder=embedder)  # type: ignore[arg-type]
    checked = 0
    for article in articles:
        for chunk in ingestor.chunk(article):
            assert article.text[chunk.start : chunk.end] == chunk.text
            [model_input] = ingestor.embedding_inputs([(article, chunk)])
            assert embedder.count_tokens([model_input])[0] + 2 <= embedder.max_tokens
            for start, end in chunk.sentences:
                assert chunk.start <= start < end <= chunk.end
            checked += 1
    assert checked > 100 if len(sources) > 1 else checked > 3


def test_benchmark_file_is_gzip_jsonl() -> None:
    """Guards the assumption the slow test above relies on (skip cleanly elsewhere)."""
    path = REALTIMEQA / "articles.jsonl.gz"
    if not path.exists():
        pytest.skip("benchmark data not present on this machine")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        assert {"id", "title", "text"} <= set(json.loads(handle.readline()))


def test_embedding_text_is_what_the_ingestor_embeds(fake_embedder: FakeEmbeddings) -> None:
    article = Article(id="a", title="Title", text="One sentence here. Another one here.")
    ingestor = Ingestor(store=None, embedder=fake_embedder)  # type: ignore[arg-type]
    [chunk] = ingestor.chunk(article)
    passages = [(article, chunk)]
    assert ingestor.embedding_inputs(passages) == embedding_texts(
        passages, fake_embedder.count_tokens
    )


# Twenty Polish words, 94 word pieces for MiniLM's tokenizer: twice the context's room.
POLISH_TITLE = (
    "Prezydent Rzeczypospolitej Polskiej zapowiedział nowelizację ustawy o odnawialnych "
    "źródłach energii podczas konferencji prasowej w Brukseli, przeciwdziałając "
    "dezinformacji dotyczącej bezpieczeństwa energetycznego"
)


@pytest.mark.slow
def test_a_long_polish_title_never_pushes_a_full_passage_out_of_the_window(
    embedder: SentenceEmbeddings,
) -> None:
    assert len(POLISH_TITLE.split()) == 20
    sentences = [f"Officials in district {n} said the grid upgrade would finish soon." for n in
                 range(200)]
    article = Article(id="pl", title=POLISH_TITLE, text=" ".join(sentences))
    ingestor = Ingestor(store=None, embedder=embedder)  # type: ignore[arg-type]
    chunks = ingestor.chunk(article)
    inputs = ingestor.embedding_inputs([(article, chunk) for chunk in chunks])
    passage_pieces = embedder.count_tokens([chunk.text for chunk in chunks])
    input_pieces = embedder.count_tokens(inputs)
    assert max(passage_pieces) >= ingestor.max_passage_tokens - 20  # full passages
    assert all(text.startswith("Prezydent Rzeczypospolitej") for text in inputs)
    assert max(input_pieces) <= embedder.max_tokens - 2  # [CLS] and [SEP] fit too


def _reading_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cleaning(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged input was cleaned again")

    for target in ("index.loaders.clean_article_text", "index.loaders.clean_paragraphs",
                   "index.articles_jsonl.clean_article_text"):
        monkeypatch.setattr(target, no_cleaning)


def test_an_unchanged_reingest_does_not_read_the_articles_again(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [{"id": f"news-{n}", "title": f"Report {n}", "published": f"2022-03-0{n}",
                "text": f"Report number {n} on the harbour works.\n\n{STORY}"}
               for n in range(1, 6)]
    (corpus / "news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    dossier = _dossier(isolated, fake_embedder)
    first = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (first.added, first.unchanged) == (7, 0)
    with monkeypatch.context() as patch:
        _reading_forbidden(patch)
        again = dossier.ingestor().run([corpus], corpus_root=corpus, prune=True)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 7, 0)
    assert again.passages == first.passages

    # A changed file is read again, and only it.
    (corpus / "storms.md").write_text(f"---\ntitle: Storms\n---\n{STORY} More rain.\n")
    changed = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (changed.updated, changed.unchanged) == (1, 6)


def test_bytes_that_read_as_the_indexed_article_are_remembered_not_reread(
    corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dossier = _dossier(isolated, fake_embedder)
    dossier.ingestor().run([corpus], corpus_root=corpus)
    # Trailing blank lines: new bytes, the same article once cleaned. Like an index made
    # before raw hashes were kept, it is read once more, not re-embedded...
    with (corpus / "storms.md").open("a") as handle:
        handle.write("\n\n\n")
    calls = fake_embedder.calls
    once_more = dossier.ingestor().run([corpus], corpus_root=corpus)
    assert (once_more.updated, once_more.unchanged) == (0, 2)
    assert fake_embedder.calls == calls
    # ... and its new raw hash is kept, so the next ingest skips it unread.
    with monkeypatch.context() as patch:
        _reading_forbidden(patch)
        assert dossier.ingestor().run([corpus], corpus_root=corpus).unchanged == 2
