"""Article vectors: each article's passages' mean direction, searched, saved and reloaded."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from index.article_vectors import ArticleVectors


def _passages() -> list[tuple[str, list[float]]]:
    # "mixed" has one passage along each axis: its direction lies between them.
    return [("east", [1.0, 0.0, 0.0]), ("mixed", [1.0, 0.0, 0.0]), ("north", [0.0, 1.0, 0.0]),
            ("mixed", [0.0, 1.0, 0.0]), ("east", [0.9, 0.1, 0.0])]


def test_an_article_is_the_mean_direction_of_its_passages() -> None:
    vectors = ArticleVectors.build(_passages(), "g1")
    assert vectors.ids == ["east", "mixed", "north"]
    assert np.allclose(np.linalg.norm(vectors.matrix, axis=1), 1.0)
    mixed = vectors.matrix[vectors.ids.index("mixed")]
    assert np.allclose(mixed, [2**-0.5, 2**-0.5, 0.0], atol=1e-6)
    # A question between the two axes is nearest the article that covers both.
    found = vectors.search([1.0, 1.0, 0.0], 3)
    assert found[0][0] == "mixed" and len(found) == 3
    assert [article for article, _ in vectors.search([0.0, 2.0, 0.0], 2)] == ["north", "mixed"]
    assert vectors.search([1.0, 0.0, 0.0], 0) == []
    assert ArticleVectors.build([], "g0").search([1.0, 0.0], 5) == []


def test_saved_vectors_come_back_with_their_generation(tmp_path: Path) -> None:
    vectors = ArticleVectors.build(_passages(), "g1")
    vectors.save(tmp_path / "vectors")
    ArticleVectors.build([("only", [0.0, 0.0, 1.0])], "g2").save(tmp_path / "vectors")

    loaded = ArticleVectors.load(tmp_path / "vectors")
    assert loaded is not None and loaded.generation == "g2" and loaded.ids == ["only"]
    assert not list(tmp_path.glob(".vectors-*")) and not (tmp_path / "vectors.old").exists()
    assert ArticleVectors.load(tmp_path / "absent") is None


def test_damaged_vectors_are_refused_and_said_so_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ArticleVectors.build(_passages(), "g1").save(tmp_path / "vectors")
    np.save(tmp_path / "vectors" / "vectors.npy", np.zeros((1, 3), dtype=np.float32))

    with caplog.at_level(logging.WARNING, logger="index.article_vectors"):
        assert ArticleVectors.load(tmp_path / "vectors") is None
    [warning] = caplog.records
    assert "unreadable" in warning.getMessage() and "3 ids for 1 vectors" in warning.getMessage()
