"""What the embedding model's folder says about it (tokenizer, window, size), read without torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importing sentence-transformers costs seconds (it pulls torch, transformers, sklearn and
# scipy); a question only needs the tokenizer and these few numbers from the folder.


@dataclass(frozen=True)
class ModelFiles:
    """A sentence-transformers model folder whose model OpenVINO can run without torch: a
    fast tokenizer (tokenizer.json), mean pooling, unit vectors (as all-MiniLM-L6-v2)."""

    folder: Path
    name: str
    tokenizer_json: str
    pad_id: int
    max_tokens: int
    dimension: int
    fingerprint: str

    @classmethod
    def read(cls, folder: Path, name: str) -> ModelFiles | None:
        """The folder's facts, or None when it is not such a model (torch embeds then)."""
        try:
            config = _json(folder / "config.json")
            modules = _json(folder / "modules.json")
            pooling = _json(folder / "1_Pooling" / "config.json")
            window = _json(folder / "sentence_bert_config.json")
            tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
            kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
            if kinds != ["Transformer", "Pooling", "Normalize"] or not pooling.get(
                "pooling_mode_mean_tokens"
            ):
                return None
            padding = json.loads(tokenizer_json).get("padding") or {}
            return cls(
                folder=folder,
                name=name,
                tokenizer_json=tokenizer_json,
                pad_id=int(padding.get("pad_id", config.get("pad_token_id", 0)) or 0),
                max_tokens=int(window.get("max_seq_length") or 256),
                dimension=int(pooling.get("word_embedding_dimension") or config["hidden_size"]),
                # As the int8 models saved so far recorded it: they stay valid.
                fingerprint=(
                    f"{name}|{config['hidden_size']}|{config['num_hidden_layers']}"
                    f"|{config['vocab_size']}"
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def tokenizer(self, *, max_tokens: int | None = None) -> Any:
        """A fresh fast tokenizer: no padding, truncated to `max_tokens` (None: never)."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self.tokenizer_json)
        tokenizer.no_padding()
        if max_tokens is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(max_length=max_tokens)
        return tokenizer


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
