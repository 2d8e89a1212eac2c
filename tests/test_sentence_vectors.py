"""Sentence vectors from ingest (late chunking): kept compactly, and the same quotes as when
computed at question time."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from index.sentence_vectors import SentenceVectorFile, dequantize, quantize
from tests.support import PROJECT, SEED
from tests.support.fakes import FakeEmbeddings

SEED_QUESTIONS = PROJECT / "bench" / "seed-questions.jsonl"


def _unit_rows(count: int, dimension: int = 384, seed: int = 7) -> Any:
    rows = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_int8_rows_keep_their_dot_products_in_a_quarter_of_the_space() -> None:
    rows = _unit_rows(12)
    blob = quantize(rows)
    assert len(blob) == 12 * (384 + 4)  # int8 codes and one float32 scale per row
    back = dequantize(blob, 384)
    assert np.abs(back @ rows.T - rows @ rows.T).max() < 0.01


def test_the_file_keeps_rows_by_passage_and_drops_them_by_article(tmp_path: Path) -> None:
    kept = SentenceVectorFile(tmp_path / "sentences" / "s.sqlite")
    assert kept.of_passages(["a:1"]) == {}
    assert not kept.path.exists()  # nothing written yet: no file made either
    a_rows, b_rows = _unit_rows(3), _unit_rows(2, seed=8)
    kept.put([("a:1", "a", [(0, 9), (10, 30), (31, 40)], a_rows),
              ("b:1", "b", [(5, 20), (21, 50)], b_rows)])
    got = kept.of_passages(["a:1", "b:1", "c:1"])
    assert sorted(got) == ["a:1", "b:1"] and got["a:1"].shape == (3, 384)
    by_sentence = kept.of_articles(["b"])
    assert sorted(by_sentence) == [("b", 5, 20), ("b", 21, 50)]
    assert float(by_sentence[("b", 21, 50)] @ b_rows[1]) > 0.99
    kept.put_headings([("a", [(0, 9)], a_rows[:1]), ("b", [(5, 20)], b_rows[:1])])
    assert sorted(kept.headings_of(["a", "b"])) == [("a", 0, 9), ("b", 5, 20)]
    kept.remove_articles(["a"])
    assert sorted(kept.of_passages(["a:1", "b:1"])) == ["b:1"]
    assert sorted(kept.headings_of(["a", "b"])) == [("b", 5, 20)]


def _file_bytes_per_vector_byte(kept: SentenceVectorFile, passages: int) -> float:
    """The file's size over its vectors' own bytes, for `passages` of six sentences (the
    news corpus's mean is 5.8: about 2.3 KB of vectors), 13 an article, with news ids."""
    article = "cnn.com/2022/01/02/health/us-coronavirus-sunday-{}/index.html".format
    kept.put((f"{article(i // 13)}:{i:016x}", article(i // 13),
              [(j * 10, j * 10 + 9) for j in range(6)], _unit_rows(6, seed=i))
             for i in range(passages))
    return kept.path.stat().st_size / (passages * 6 * (384 + 4))


def test_a_new_file_packs_its_rows_into_its_pages(tmp_path: Path) -> None:
    """Rows of ~2.3 KB filled 4 KB pages one at a time, a third of the file left empty, and
    each long passage id was kept twice (its row and an index), its article's id twice more."""
    kept = SentenceVectorFile(tmp_path / "s.sqlite")
    assert _file_bytes_per_vector_byte(kept, 2000) < 1.12


def test_a_file_with_an_earlier_versions_rows_by_passage_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    a_rows, b_rows = _unit_rows(2), _unit_rows(3, seed=9)
    with sqlite3.connect(path) as db:  # the table an earlier version wrote
        db.execute("create table sentences (passage_id text primary key, article_id text not"
                   " null, dimension integer not null, spans blob not null, vectors blob not null)")
        db.executemany("insert into sentences values (?, ?, 384, ?, ?)", [
            ("a:1", "a", np.asarray([(0, 9), (10, 30)], dtype=np.int32).tobytes(),
             quantize(a_rows)),
            ("b:1", "b", np.asarray([(0, 5), (6, 8), (9, 20)], dtype=np.int32).tobytes(),
             quantize(b_rows)),
        ])
    kept = SentenceVectorFile(path)
    assert float(kept.of_passages(["a:1"])["a:1"][1] @ a_rows[1]) > 0.99
    assert sorted(kept.of_articles(["a", "b"])) == [
        ("a", 0, 9), ("a", 10, 30), ("b", 0, 5), ("b", 6, 8), ("b", 9, 20)]
    kept.put([("a:2", "a", [(0, 4)], a_rows[:1])])  # article a written again: its rows go
    assert sorted(kept.of_passages(["a:1", "a:2", "b:1"])) == ["a:2", "b:1"]
    kept.remove_articles(["b"])
    assert sorted(kept.of_articles(["a", "b"])) == [("a", 0, 4)]


def test_passages_of_one_article_come_back_each_with_its_own_rows(tmp_path: Path) -> None:
    kept = SentenceVectorFile(tmp_path / "s.sqlite")
    rows = _unit_rows(5)
    kept.put([("x.txt:p1", "x.txt", [(0, 4), (5, 9)], rows[:2]),
              ("x.txt:p2", "x.txt", [(10, 14), (15, 19), (20, 24)], rows[2:])])
    got = kept.of_passages(["x.txt:p2", "x.txt:p1", "x.txt:p3"])
    assert sorted(got) == ["x.txt:p1", "x.txt:p2"]
    assert np.diag(got["x.txt:p2"] @ rows[2:].T).min() > 0.99
    assert float(kept.of_articles(["x.txt"])[("x.txt", 20, 24)] @ rows[4]) > 0.99
    with pytest.raises(ValueError, match="not of article"):
        kept.put([("y.txt:p1", "x.txt", [(0, 4)], rows[:1])])


def test_an_ingest_keeps_rows_only_for_the_passages_it_holds(isolated: Path) -> None:
    """A changed or removed article takes its old rows with it (fake vectors: torch-free
    embedders give none, so rows are written here by hand through the store)."""
    corpus = isolated.parent / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(SEED.read_text())
    dossier = Dossier(load_settings(data_dir=isolated), embedder=FakeEmbeddings())
    dossier.ingest([corpus])
    store = dossier.store
    assert store.sentence_file is not None
    passage_ids = [pid for pid, _ in store.iter_passages()]
    store.sentence_file.put((pid, "a.txt", [(0, 5), (6, 9)], _unit_rows(2))
                            for pid in passage_ids)
    assert store.sentence_vectors(["a.txt"])
    (corpus / "a.txt").unlink()
    dossier.ingest([corpus], prune=True)
    assert store.sentence_vectors(["a.txt"]) == {}


def _seed_questions() -> list[str]:
    return [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text().splitlines()
            if line.strip()]


def _quotes(dossier: Dossier, questions: Sequence[str]) -> list[list[tuple[str, int, int]]]:
    return [[(c.article.id, c.start, c.end) for c in dossier.answerer.ask(q).citations]
            for q in questions]


@pytest.mark.slow
def test_sentence_vectors_from_ingest_give_the_quotes_computed_ones_do(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed ingested with the shipped model (OpenVINO): answers read the sentence and
    heading vectors kept at ingest and embed only the question; computed at question
    time from the passages instead, they give the same quotes, and the
    obstacles answer still quotes the three challenges."""
    corpus = PROJECT / "corpus"
    late = {"sentence_vectors": "late"}
    dossier = Dossier(load_settings(data_dir=isolated, answer=late))
    dossier.ingest([corpus])
    assert dossier.embedder.openvino is not None
    sentence_file = dossier.store.sentence_file
    assert sentence_file is not None and sentence_file.path.exists()
    questions = _seed_questions()

    embedded: list[str] = []
    encode = dossier.embedder.encode

    def recorded(texts: Sequence[str]) -> Any:
        embedded.extend(texts)
        return encode(texts)

    monkeypatch.setattr(dossier.embedder, "encode", recorded)
    dossier.embedder.forget_cached()
    from_ingest = _quotes(dossier, questions)
    assert set(embedded) <= set(questions)  # sentences and section headings: from ingest
    assert sum(map(bool, from_ingest)) >= len(questions) // 2

    sentence_file.path.unlink()  # an index built before: computed from the passages
    computed = Dossier(load_settings(data_dir=isolated, answer=late))
    assert computed.store.sentence_vectors(["mexico-canada-critical-minerals.txt"]) == {}
    # The same quotes, led by the same one; near-ties among the others may swap places
    # (int8 storage moves a similarity by about 0.001).
    again = _quotes(computed, questions)
    assert [set(q) for q in again] == [set(q) for q in from_ingest]
    assert [q[:1] for q in again] == [q[:1] for q in from_ingest]

    obstacles = " ".join(c.quote for c in dossier.answerer.ask("what are the obstacles?")
                         .citations)
    for expected in ("regulatory systems", "Infrastructure gaps", "workforce development"):
        assert expected in obstacles
