"""The passage table: rows as Chroma's metadata and the registry give them, saved and loaded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from index.passage_table import PassageRow, PassageTable

METADATA = [
    ("storms:1", {"article_id": "storms", "start": 0, "end": 30, "index": 0,
                  "sentences": json.dumps([[0, 12], [13, 30]]), "heading": "Weather"}),
    ("storms:2", {"article_id": "storms", "start": 31, "end": 50, "index": 1,
                  "sentences": json.dumps([[31, 50]])}),
    ("markets:1", {"article_id": "markets", "start": 0, "end": 9, "index": 0,
                   "sentences": "[]"}),
]


def _table() -> PassageTable:
    return PassageTable.build(METADATA, {"storms": "2022-06-14", "markets": None}, "g1")


def test_rows_carry_place_spans_heading_and_the_articles_date() -> None:
    table = _table()
    assert len(table) == 3 and "storms:2" in table and "nowhere:1" not in table
    assert table.row("storms:1") == PassageRow(
        "storms:1", "storms", 0, 30, "Weather", ((0, 12), (13, 30)), "2022-06-14")
    assert table.row("storms:2") == PassageRow(
        "storms:2", "storms", 31, 50, None, ((31, 50),), "2022-06-14")
    assert table.row("markets:1") == PassageRow("markets:1", "markets", 0, 9, None, (), None)
    assert table.row("nowhere:1") is None


def test_a_saved_table_loads_the_same_rows(tmp_path: Path) -> None:
    table = _table()
    table.save(tmp_path / "table")
    loaded = PassageTable.load(tmp_path / "table")
    assert loaded is not None and loaded.generation == "g1"
    assert [loaded.row(pid) for pid in loaded.ids] == [table.row(pid) for pid in table.ids]
    assert PassageTable.load(tmp_path / "absent") is None


def test_a_damaged_table_is_said_in_the_log_and_not_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _table().save(tmp_path / "table")
    meta = json.loads((tmp_path / "table" / "dossier.json").read_text())
    meta["ids"] = meta["ids"][:2]  # ids and rows no longer agree
    (tmp_path / "table" / "dossier.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="index.passage_table"):
        assert PassageTable.load(tmp_path / "table") is None
    assert "unreadable" in caplog.text


def test_an_empty_store_gives_an_empty_table(tmp_path: Path) -> None:
    table = PassageTable.build([], {}, "empty")
    table.save(tmp_path / "table")
    loaded = PassageTable.load(tmp_path / "table")
    assert loaded is not None and len(loaded) == 0 and loaded.row("x") is None


def test_a_hit_needs_only_its_article_and_date() -> None:
    table = _table()
    assert table.article_and_date("storms:2") == ("storms", "2022-06-14")
    assert table.article_and_date("markets:1") == ("markets", None)
    assert table.article_and_date("nowhere:1") is None
