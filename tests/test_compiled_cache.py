"""The compiled-model folder: which folder a setting names, and that it stays small."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index import compiled_cache


def test_the_setting_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiled_cache.resolve("") == tmp_path / "xdg" / "dossier" / "openvino"
    assert compiled_cache.resolve(" OFF ") is None
    assert compiled_cache.resolve(str(tmp_path / "mine")) == tmp_path / "mine"


def test_only_the_most_recently_used_blobs_are_kept(tmp_path: Path) -> None:
    for age in range(6):
        blob = tmp_path / f"{age}.blob"
        blob.write_bytes(b"x")
        os.utime(blob, (1_000_000 - age * 100, 1_000_000 - age * 100))
    (tmp_path / "notes.txt").write_text("not a blob")
    compiled_cache.prune(tmp_path, keep=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.blob", "1.blob", "2.blob", "3.blob", "notes.txt"
    ]


def test_a_folder_that_cannot_be_made_is_no_cache(tmp_path: Path) -> None:
    class Core:
        def set_property(self, _: object) -> None:
            raise AssertionError("never asked")

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert compiled_cache.enable(Core(), blocked / "cache") is False
    assert compiled_cache.enable(Core(), None) is False
    compiled_cache.prune(blocked / "cache")  # nothing there: nothing to do
