"""One typed settings object: config/default.toml, then --config FILE, then DOSSIER_* env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.errors import SettingsError
from bot.question import AnswerKind

# config/default.toml, reached through a link inside the package so that an installed copy
# (which has no config/ folder) carries the same file as package data.
DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.toml"


# Where an answer's candidate sentences get their vectors (bot/sentence_vectors.py).
SentenceSource = Literal["late", "separate"]


class Section(BaseModel):
    """A settings table: unknown keys are an error, not a silent typo."""

    model_config = ConfigDict(extra="forbid")


class CorpusSettings(Section):
    path: Path = Field(Path("corpus"), description="Folder ingested when no PATH is given.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped.")


class IndexSettings(Section):
    model: str = Field("", description="sentence-transformers model; empty = bundled MiniLM.")
    device: str = Field("cpu", description="Torch device for the embedding model.")
    batch_size: int = Field(32, ge=1, description="Passages embedded per model call.")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="auto = OpenVINO int8 once an ingest of 2,000+ passages has calibrated "
        "it, else bf16 where the CPU has native bf16, else fp32; int8 = the same from 128 "
        "passages on.",
    )
    max_passage_tokens: int = Field(
        200, ge=32, description="Target passage size in word pieces (model window caps it)."
    )
    context_in_embedding: bool = Field(
        True, description="Prefix title and section heading to the text that is embedded."
    )
    compiled_cache: str = Field(
        "",
        description="Folder where OpenVINO keeps the compiled model, so a new process "
        "loads it instead of compiling it, and the plain OpenVINO copy that new small data "
        "dirs copy instead of converting; empty = $XDG_CACHE_HOME/dossier/openvino "
        '(~/.cache/...), "off" = neither.',
    )


class StoreSettings(Section):
    chroma_url: str = Field("", description="Empty = embedded Chroma in the data dir.")
    collection: str = Field("dossier", description="Chroma collection name.")


class RetrievalSettings(Section):
    k: int = Field(6, ge=1, description="Passages handed to the answer.")
    dense_depth: int = Field(50, ge=1, description="Candidates from the vector search.")
    keyword_depth: int = Field(50, ge=1, description="Candidates from the BM25 search.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    per_article: int = Field(3, ge=1, description="Most passages one article may contribute.")
    article_support: float = Field(
        0.3, ge=0, description="Weight of an article's 2nd and 3rd best passages in its rank."
    )
    article_keyword_weight: float = Field(
        2.0, ge=0,
        description="Weight of BM25 over whole articles (title weighted) in the article "
        "ranking, fused by reciprocal rank with the passages' order (0 = off).",
    )
    article_dense_weight: float = Field(
        1.0, ge=0,
        description="Weight of the question's cosine to whole articles (their passages' "
        "mean vector) in the article ranking, fused like article_keyword_weight (0 = off).",
    )
    recency_weight: float = Field(
        0.5, ge=0, description="Bonus for an article published on the day asked (0 = off)."
    )
    recency_half_life_days: float = Field(30.0, gt=0, description="Days for that bonus to halve.")
    time_phrase_boost: float = Field(
        1.0, ge=0, description='Bonus inside the window a question names ("this week").'
    )
    follow_up_boost: float = Field(
        2.0, ge=0,
        description="Bonus for the previous answer's articles when a question follows up.",
    )


class AnswerSettings(Section):
    max_quotes: int = Field(4, ge=1, description="Most quotes in one answer.")
    sentence_vectors: SentenceSource = Field(
        "late",
        description="Candidate sentences' vectors: pooled from their passage's forward pass "
        "(late chunking, kept at ingest) or each sentence embedded alone when asked.",
    )


class ReaderSettings(Section):
    support_weight: float = Field(
        0.3, ge=0, description="Weight of the rare question terms a sentence itself holds."
    )
    context_weight: float = Field(
        0.3, ge=0, description="Weight of those terms in its paragraph."
    )
    kind_weight: float | dict[SentenceSource, float] = Field(
        default_factory=lambda: _bars(late=0.25, separate=0.15),
        description="Bonus when it holds the kind of phrase asked for.",
    )
    # A bar per source of sentence vectors (answer.sentence_vectors): late-chunked
    # sentences, read in their passage's context, sit lower against a short question.
    # One number sets both.
    min_score: float | dict[SentenceSource, float] = Field(
        default_factory=lambda: _bars(late=0.65, separate=0.7),
        description="Below this best answer score the articles 'do not cover it'.",
    )
    follow_up_min_score: float | dict[SentenceSource, float] = Field(
        default_factory=lambda: _bars(late=0.45, separate=0.55),
        description="The same bar for a follow-up read in the previous answer's articles.",
    )
    min_context: float = Field(
        0.35, ge=0, le=1,
        description="Share of the question's rare terms that must stand near some sentence.",
    )
    phrase_required_for: list[AnswerKind] = Field(
        ["person", "time", "quantity"],
        description="Kinds of question only a sentence holding the asked-for phrase answers.",
    )


def _bars(*, late: float, separate: float) -> dict[SentenceSource, float]:
    return {"late": late, "separate": separate}


def per_source(value: float | dict[SentenceSource, float], source: SentenceSource) -> float:
    """A reader bar for answers whose sentence vectors come from `source`."""
    return float(value) if isinstance(value, float | int) else value[source]


class LLMSettings(Section):
    provider: Literal["none", "openai", "ollama", "local"] = Field(
        "none", description="Answer writer; local = a GGUF file run in-process by llama.cpp."
    )
    base_url: str = Field("", description="OpenAI-compatible /v1 URL or Ollama URL.")
    model: str = Field("", description="Chat model name on that server.")
    timeout_s: float = Field(30.0, gt=0, description="Give up and answer extractively after.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=16, description="Most tokens the model may write.")
    output: Literal["auto", "json_schema", "tool_calling", "text"] = Field(
        "auto",
        description="How the model is asked for quotes: auto = json_schema for local and "
        "OpenAI itself, text (the ANSWER/QUOTES protocol) for other servers.",
    )
    model_path: str = Field("", description="GGUF model file for provider local.")
    threads: int = Field(0, ge=0, description="llama.cpp CPU threads (0 = half the cores).")
    context_size: int = Field(4096, ge=512, description="llama.cpp context window in tokens.")


class ChatSettings(Section):
    history_turns: int = Field(6, ge=0, description="Question/answer pairs kept per chat.")


class TelegramSettings(Section):
    api_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL.")
    file_base_url: str = Field("https://api.telegram.org/file/bot", description="File URL.")
    webhook_url: str = Field("", description="Empty = long polling.")
    webhook_listen: str = Field("127.0.0.1", description="Address the webhook server binds.")
    webhook_port: int = Field(8443, description="Port the webhook server binds.")
    allowed_user_ids: list[int] = Field(default_factory=list, description="Empty = anyone.")
    allowed_chat_ids: list[int] = Field(default_factory=list, description="Empty = any chat.")
    admin_user_ids: list[int] = Field(default_factory=list, description="May ingest documents.")
    questions_per_minute: int = Field(10, ge=1, description="Per-user rate limit.")
    max_question_chars: int = Field(1000, ge=1, description="Longer questions are refused.")
    max_document_mb: float = Field(20.0, gt=0, description="Bot API getFile limit.")
    messages_per_second: float = Field(
        30.0, ge=0, description="Messages the bot sends a second at most, all chats together "
        "(Telegram's limit for a bot); 0 = no limit of the bot's own.")
    paid_broadcast: bool = Field(
        False, description="Send new messages as Telegram paid broadcasts (a fee in Stars "
        "each, up to 1000 a second); edits stay within messages_per_second.")


class LogSettings(Section):
    format: Literal["text", "json"] = Field(
        "text", description="text = one escaped line per record; json = JSON lines."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe record the bot logs (commands log warnings)."
    )


class Settings(BaseSettings):
    """Every Dossier setting; see config/default.toml for the commented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="DOSSIER_", env_nested_delimiter="__", extra="forbid",
        toml_file=[DEFAULT_CONFIG],
    )

    data_dir: Path = Field(Path(".dossier"), description="Index and state live here.")
    corpus: CorpusSettings = CorpusSettings()
    index: IndexSettings = IndexSettings()
    store: StoreSettings = StoreSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    reader: ReaderSettings = ReaderSettings()
    llm: LLMSettings = LLMSettings()
    chat: ChatSettings = ChatSettings()
    telegram: TelegramSettings = TelegramSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit arguments, then env, then the TOML files (a later
        # file's keys over an earlier one's).
        files = TomlConfigSettingsSource(settings_cls, deep_merge=True)
        return (init_settings, env_settings, files)

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings; a bad value or unknown key becomes one SettingsError line."""
    reading: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"config file not found: {config_file}")
        reading = _reading_also(config_file)
    try:
        settings = reading(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"bad setting {key}: {first['msg']}") from None
    # Handed on as plain Settings (the subclass only chose the files), so it compares equal.
    return Settings.model_validate(dict(settings))


def _reading_also(config_file: Path) -> type[Settings]:
    """Settings whose TOML sources are the defaults and then `config_file`."""
    config = SettingsConfigDict(**Settings.model_config)
    config["toml_file"] = [DEFAULT_CONFIG, config_file]
    return type("Settings", (Settings,), {"model_config": config, "__module__": __name__})


def telegram_token() -> str | None:
    """The bot token: a secret, so only ever read from the environment."""
    return os.environ.get("TELEGRAM_BOT_TOKEN") or None


def llm_api_key() -> str | None:
    """The LLM key: DOSSIER_LLM_API_KEY, else OPENAI_API_KEY."""
    return os.environ.get("DOSSIER_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None
