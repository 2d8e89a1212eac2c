"""An article is known by its path: no ingest path lets one file replace another's article."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import index.loaders
from bot.factory import Dossier
from bot.settings import load_settings
from tests.support import SEED
from tests.support.fakes import FakeEmbeddings

REPORT_A = "The harbour of Vellmar reopened on Monday after the storm damaged three cranes."
REPORT_B = "Farmers in the northern valley expect a late harvest after weeks of heavy rain."
OTHER_SEED_TEXT = (
    "Mexico and Canada signed a memorandum on seed banks this week, officials said.\n\n"
    "The agreement covers maize and wheat varieties kept in cold storage."
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    return folder


@pytest.fixture
def dossier(corpus: Path, isolated: Path, fake_embedder: FakeEmbeddings) -> Dossier:
    return Dossier(load_settings(data_dir=isolated, corpus={"path": corpus}),
                   embedder=fake_embedder)


def _texts_by_id(dossier: Dossier) -> dict[str, str]:
    records = dossier.store.records()
    return {i: a.text for i, a in dossier.store.get_articles(list(records)).items()}


def test_ids_are_paths_under_the_corpus_root(dossier: Dossier, corpus: Path) -> None:
    (corpus / "a").mkdir()
    (corpus / "a" / "report.txt").write_text(REPORT_A)
    (corpus / "report.md").write_text(REPORT_B)
    report = dossier.ingest()
    assert report.added == 3
    assert set(dossier.store.records()) == {SEED.name, "a/report.txt", "report.md"}


def test_two_single_files_with_one_stem_are_two_articles(dossier: Dossier,
                                                         tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "report.txt").write_text(REPORT_A)
    (tmp_path / "b" / "report.md").write_text(REPORT_B)
    (tmp_path / "b" / "report.txt").write_text(REPORT_B + " Again.")
    first = dossier.ingest([tmp_path / "a" / "report.txt"])
    second = dossier.ingest([tmp_path / "b" / "report.md"])
    third = dossier.ingest([tmp_path / "b" / "report.txt"])
    assert (first.added, second.added, third.added) == (1, 1, 1)
    assert (second.updated, third.updated) == (0, 0)
    texts = sorted(_texts_by_id(dossier).values())
    assert texts == sorted([REPORT_A, REPORT_B, REPORT_B + " Again."])


def test_a_file_of_the_corpus_given_alone_keeps_its_folder_id(dossier: Dossier,
                                                                corpus: Path) -> None:
    dossier.ingest()
    again = dossier.ingest([corpus / SEED.name])
    assert (again.added, again.unchanged) == (0, 1)
    assert list(dossier.store.records()) == [SEED.name]


def test_a_jsonl_record_keeps_its_id_and_never_replaces_another_files(
    dossier: Dossier, tmp_path: Path
) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    first.write_text(json.dumps({"id": "story-1", "title": "Harbour", "text": REPORT_A}) + "\n")
    second.write_text(json.dumps({"id": "story-1", "title": "Harvest", "text": REPORT_B}) + "\n")
    assert dossier.ingest([first]).added == 1
    refused = dossier.ingest([second])
    assert (refused.added, refused.updated) == (0, 0)
    (skipped,) = refused.skipped
    assert "story-1" in skipped.reason and "one.jsonl" in skipped.reason
    assert _texts_by_id(dossier) == {"story-1": REPORT_A}
    # The same file changed is an update of its own record.
    first.write_text(json.dumps({"id": "story-1", "title": "Harbour", "text": REPORT_B}) + "\n")
    assert dossier.ingest([first]).updated == 1


def test_an_upload_named_like_a_corpus_file_adds_an_article(dossier: Dossier,
                                                             corpus: Path) -> None:
    dossier.ingest()
    seed_text = _texts_by_id(dossier)[SEED.name]
    added = dossier.add_document("mexico-canada-critical-minerals.md", OTHER_SEED_TEXT.encode())
    assert (added.report.added, added.report.updated) == (1, 0) and not added.replaced
    texts = _texts_by_id(dossier)
    assert texts == {SEED.name: seed_text, added.article_id: OTHER_SEED_TEXT}


def test_an_upload_of_the_same_name_replaces_that_upload_only(dossier: Dossier) -> None:
    dossier.ingest()
    first = dossier.add_document("notes.txt", REPORT_A.encode())
    second = dossier.add_document("notes.txt", REPORT_B.encode())
    assert first.article_id == second.article_id and second.replaced
    assert second.report.updated == 1
    texts = _texts_by_id(dossier)
    assert texts[second.article_id] == REPORT_B and SEED.name in texts and len(texts) == 2
    assert [u.name for u in dossier.uploads()] == ["notes.txt"]


def test_uploads_are_listed_and_removed_with_their_article(dossier: Dossier) -> None:
    dossier.ingest()
    dossier.add_document("harbour.txt", REPORT_A.encode())
    dossier.add_document("harvest.md", REPORT_B.encode())
    listed = dossier.uploads()
    assert [u.name for u in listed] == ["harbour.txt", "harvest.md"]
    removed = dossier.remove_upload(listed[0].name)
    assert removed.article_id == listed[0].article_id
    assert [u.name for u in dossier.uploads()] == ["harvest.md"]
    assert listed[0].article_id not in dossier.store.records()
    assert SEED.name in dossier.store.records()


def _stem_id(path: Path, corpus_root: Path | None) -> str:
    """How ids were made before they were paths: the file's stem, slugged."""
    return re.sub(r"[^a-z0-9]+", "-", path.name.split(".")[0].lower()).strip("-")


def test_an_old_index_moves_to_path_ids_without_embedding_again(
    dossier: Dossier, corpus: Path, fake_embedder: FakeEmbeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (corpus / "storms.md").write_text(f"---\ntitle: Storms\n---\n{REPORT_A}\n")
    with monkeypatch.context() as legacy:
        legacy.setattr(index.loaders, "article_id", _stem_id)
        built = dossier.ingest()
    assert set(dossier.store.records()) == {"mexico-canada-critical-minerals", "storms"}
    passages, calls = built.passages, fake_embedder.calls
    moved = dossier.ingest()
    assert set(dossier.store.records()) == {SEED.name, "storms.md"}
    assert fake_embedder.calls == calls and moved.embedded == 0
    assert moved.passages == passages and (moved.added, moved.skipped) == (0, [])
    query = fake_embedder.encode(["harbour cranes storm"])[0].tolist()
    hits = dossier.store.dense_search(query, 50)
    assert {h.article_id for h in hits} == {SEED.name, "storms.md"}
    assert dossier.ingest().unchanged == 2
