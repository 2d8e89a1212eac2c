"""Pytest fixture that runs one real Chroma server for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chroma_server import ChromaServer


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A running Chroma server shared by the session; tests must not stop it.

    Tests share its data, so each should use collection names of its own. A test that needs
    to stop or restart a server should start its own ChromaServer instead.
    """
    # Under pytest's basetemp, so a failed session leaves the data for inspection.
    server = ChromaServer(tmp_path_factory.mktemp("chroma"))
    server.start()
    try:
        yield server
    finally:
        server.close()
