"""Tests that ChromaServer runs a real Chroma server that chromadb.HttpClient can use."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from pathlib import Path

import chromadb
import httpx
import pytest

from index.store import is_outage
from tests.support.chroma_fixtures import chroma_server  # noqa: F401 - a fixture, used by name
from tests.support.chroma_server import ChromaServer, ChromaServerError

pytestmark = pytest.mark.slow

# Three unit vectors: "a" and "c" point almost the same way, "b" is orthogonal to both.
IDS = ["a", "b", "c"]
EMBEDDINGS: list[Sequence[float]] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0]]
DOCUMENTS = ["alpha", "beta", "gamma"]


def add_and_query(client: chromadb.api.ClientAPI, name: str) -> None:
    """Create a cosine collection with explicit embeddings and check a nearest-neighbour query."""
    collection = client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS)
    assert_query(client, name)


def assert_query(client: chromadb.api.ClientAPI, name: str) -> None:
    collection = client.get_collection(name, embedding_function=None)
    assert collection.count() == 3
    query: list[Sequence[float]] = [[1.0, 0.0, 0.0]]
    result = collection.query(query_embeddings=query, n_results=2)
    assert result["ids"] == [["a", "c"]]
    assert result["documents"] == [["alpha", "gamma"]]
    distances = result["distances"]
    assert distances is not None
    # Cosine distance: 0 for the same direction, small for "c".
    assert distances[0][0] == pytest.approx(0.0, abs=1e-5)
    assert 0.0 < distances[0][1] < 0.05


def test_session_fixture_serves_collections(chroma_server: ChromaServer) -> None:  # noqa: F811
    assert chroma_server.running
    assert chroma_server.url == f"http://127.0.0.1:{chroma_server.port}"
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port)
    # The fixture's server is shared, so a unique name keeps this test's data apart.
    add_and_query(client, f"fixture-{uuid.uuid4().hex[:8]}")


def test_stop_and_restart_keep_data(tmp_path: Path) -> None:
    with ChromaServer(tmp_path / "db") as server:
        port = server.port
        client = chromadb.HttpClient(host=server.host, port=server.port)
        add_and_query(client, "articles")

        server.stop()
        assert not server.running
        assert not server.heartbeat()
        with pytest.raises(httpx.TransportError) as refused:
            client.get_collection("articles").count()
        assert is_outage(refused.value)

        server.start()
        assert server.port == port
        # The same client object reconnects, and the data survived the restart.
        assert_query(client, "articles")
    assert not server.running
    # The directory was the caller's, so close() leaves it in place.
    assert (tmp_path / "db" / "chroma.sqlite3").exists()


def test_owned_directory_is_removed_on_close() -> None:
    with ChromaServer() as server:
        path = server.path
        assert server.heartbeat()
    assert not path.exists()


def test_start_failure_reports_server_output(tmp_path: Path) -> None:
    # Hold the port, so chroma cannot bind it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = ChromaServer(tmp_path / "db", port=port, startup_timeout=30)
        with pytest.raises(ChromaServerError, match="not available"):
            server.start()
        assert not server.running
        server.close()
