"""Settings: config/default.toml is the one source of defaults, in the tree and installed."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from pydantic import BaseModel
from typer.testing import CliRunner

from bot.answer import Answerer
from bot.chat import Conversation
from bot.cli import app
from bot.errors import DossierError
from bot.retrieval import HybridRetriever
from bot.settings import DEFAULT_CONFIG, Settings, load_settings
from bot.timeliness import Timeliness
from index.embeddings import SentenceEmbeddings
from index.ingest import Ingestor
from index.loaders import DEFAULT_MAX_BYTES
from tests.support import PROJECT

TOML_FILE = PROJECT / "config" / "default.toml"
TOML = tomllib.loads(TOML_FILE.read_text(encoding="utf-8"))
SECTIONS = [name for name, value in TOML.items() if isinstance(value, dict)]


def test_the_package_reads_config_default_toml() -> None:
    assert DEFAULT_CONFIG.read_bytes() == TOML_FILE.read_bytes()


def test_every_setting_is_in_the_toml_and_nothing_else() -> None:
    assert set(TOML) == set(Settings.model_fields)
    for section in SECTIONS:
        model = Settings.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        assert set(TOML[section]) == set(model.model_fields), section


@pytest.mark.parametrize("section", SECTIONS)
def test_settings_equal_the_toml_field_by_field(
    section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOSSIER_DATA_DIR")
    monkeypatch.delenv("DOSSIER_INDEX__COMPILED_CACHE")
    settings = Settings().model_dump(mode="json")
    assert settings["data_dir"] == TOML["data_dir"]
    for key, value in TOML[section].items():
        assert settings[section][key] == value, f"{section}.{key}"


@pytest.mark.parametrize("section", SECTIONS)
def test_code_defaults_equal_the_toml_field_by_field(section: str) -> None:
    """The models keep defaults (sections are built alone in tests): they must agree."""
    model = Settings.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    defaults = model().model_dump(mode="json")
    for key, value in TOML[section].items():
        assert defaults[key] == value, f"{section}.{key}"


def _default(function: Any, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


def test_constructor_defaults_equal_the_settings() -> None:
    """Constructors used without a factory (tests, bench) behave as configured by default."""
    settings = Settings(data_dir=Path("unused"))
    retrieval, index = settings.retrieval, settings.index
    assert _default(Ingestor, "max_passage_tokens") == index.max_passage_tokens
    assert _default(Ingestor, "context_in_embedding") == index.context_in_embedding
    assert _default(Ingestor, "max_bytes") == settings.corpus.max_file_mb * 1024 * 1024
    assert settings.corpus.max_file_mb * 1024 * 1024 == DEFAULT_MAX_BYTES
    assert _default(SentenceEmbeddings, "device") == index.device
    assert _default(SentenceEmbeddings, "batch_size") == index.batch_size
    assert _default(SentenceEmbeddings, "precision") == index.precision
    fields = HybridRetriever.model_fields
    shared = set(fields) & set(type(retrieval).model_fields)  # k, depths, boosts...
    assert len(shared) >= 7
    for name in shared:
        assert fields[name].default == getattr(retrieval, name), name
    assert Timeliness() == Timeliness(
        recency_weight=retrieval.recency_weight,
        half_life_days=retrieval.recency_half_life_days,
        phrase_boost=retrieval.time_phrase_boost,
    )
    assert _default(Answerer, "llm_timeout_s") == settings.llm.timeout_s
    assert _default(Conversation, "history_turns") == settings.chat.history_turns


def test_a_config_file_overrides_the_defaults_and_env_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "dossier.toml"
    config.write_text("[retrieval]\nk = 9\nrrf_k = 10\n[chat]\nhistory_turns = 2\n")
    monkeypatch.setenv("DOSSIER_RETRIEVAL__RRF_K", "20")
    settings = load_settings(config)
    assert (settings.retrieval.k, settings.retrieval.rrf_k) == (9, 20)
    assert settings.retrieval.per_article == TOML["retrieval"]["per_article"]
    assert settings.chat.history_turns == 2
    assert type(settings) is Settings
    # Nothing of the file stays behind for the next caller.
    assert load_settings().retrieval.k == TOML["retrieval"]["k"]


def test_a_bad_key_in_a_config_file_is_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "dossier.toml"
    config.write_text("[retrieval]\nkk = 9\n")
    with pytest.raises(DossierError, match=r"^bad setting retrieval\.kk: "):
        load_settings(config)


def test_the_cli_hands_config_to_the_command(tmp_path: Path) -> None:
    config = tmp_path / "dossier.toml"
    missing = tmp_path / "no-corpus-here"
    config.write_text(f"[corpus]\npath = {str(missing)!r}\n")
    result = CliRunner().invoke(app, ["--config", str(config), "ingest"])
    assert isinstance(result.exception, DossierError)
    assert str(result.exception) == f"no such file or folder: {missing}"
    # The next command in the same process runs on the defaults again.
    again = CliRunner().invoke(app, ["ingest", str(missing)])
    assert isinstance(again.exception, DossierError)


@pytest.mark.slow
def test_a_built_package_carries_the_defaults(tmp_path: Path) -> None:
    """An installed copy has no config/ folder: the wheel must carry default.toml."""
    if Version(version("setuptools")) < Version("69"):
        pytest.skip("building offline needs the setuptools>=69 that build-system asks for")
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside it
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    for name in ("bot", "index", "config"):
        shutil.copytree(PROJECT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("dossier-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("bot/default.toml") == TOML_FILE.read_bytes()
