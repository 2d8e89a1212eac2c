"""The chat model a setting names (OpenAI-compatible, Ollama, or a local GGUF), the prompt
it gets, and the follow-up condenser."""

from __future__ import annotations

import html
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from bot.errors import LLMUnavailable
from bot.prompts import (
    CONDENSE_PROMPT,
    PASSAGE,
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_STRUCTURED,
    USER_PROMPT,
)
from bot.retrieval import Retrieved
from bot.safety import mask_instructions
from bot.settings import LLMSettings, llm_api_key
from index.models import Article

Output = Literal["json_schema", "tool_calling", "text"]


def make_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The configured chat model, or None for the extractive (offline) default. For
    "local" this starts the in-process llama.cpp server (once per model file)."""
    if settings.provider == "none":
        return None
    if settings.provider in ("openai", "local"):
        from langchain_openai import ChatOpenAI

        if settings.provider == "local":
            from bot.local_llm import local_server

            base_url: str | None = local_server(settings).base_url
            model = settings.model or "local"
        else:
            base_url, model = settings.base_url or None, settings.model or "gpt-4o-mini"
        return ChatOpenAI(
            model=model,
            base_url=base_url,
            api_key=llm_api_key() or "not-needed",
            timeout=settings.timeout_s,
            max_retries=0,
            temperature=settings.temperature,
            max_completion_tokens=settings.max_tokens,
            stream_usage=True,
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.model or "llama3.2",
        base_url=settings.base_url or None,
        temperature=settings.temperature,
        num_predict=settings.max_tokens,
        client_kwargs={"timeout": settings.timeout_s},
    )


def output_mode(settings: LLMSettings) -> Output:
    """How to ask this server for quotes: structured output where it surely has it."""
    if settings.output != "auto":
        return settings.output
    if settings.provider == "local" or (settings.provider == "openai" and not settings.base_url):
        return "json_schema"
    return "text"


def _fence(text: str) -> str:
    """Article text can never close its own fence or open a new one."""
    return html.escape(text, quote=False)


def build_messages(
    question: str, retrieved: list[Retrieved], articles: dict[str, Article],
    output: Output = "text",
) -> list[BaseMessage]:
    """The system rules for `output` and the fenced, numbered passages with the question."""
    passages = "\n".join(
        PASSAGE.format(
            n=i,
            title=_fence(articles[r.passage.article_id].title).replace('"', "'"),
            text=_fence(
                mask_instructions(r.passage.text, list(r.passage.sentences), r.passage.start)
            ),
        )
        for i, r in enumerate(retrieved, 1)
        if r.passage.article_id in articles
    )
    return [
        SystemMessage(SYSTEM_PROMPT if output == "text" else SYSTEM_PROMPT_STRUCTURED),
        HumanMessage(USER_PROMPT.format(passages=passages, question=question)),
    ]


def call(model: BaseChatModel, messages: list[BaseMessage]) -> str:
    """The model's reply text; any failure becomes LLMUnavailable with a short reason."""
    try:
        reply = model.invoke(messages)
    except Exception as exc:  # every client error, timeout or refusal counts the same
        name = type(exc).__name__
        reason = "timed out" if "timeout" in name.lower() else f"{name}"
        raise LLMUnavailable(reason) from exc
    content = reply.content if isinstance(reply.content, str) else str(reply.content)
    if not content.strip():
        raise LLMUnavailable("empty reply")
    return content


def condense(model: BaseChatModel, history: list[tuple[str, str]], question: str) -> str:
    """A follow-up rewritten as a standalone question; LLMUnavailable when the model fails
    (the caller decides how to answer without it)."""
    lines = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)
    standalone = call(
        model, [HumanMessage(CONDENSE_PROMPT.format(history=lines, question=question))]
    )
    standalone = standalone.strip().splitlines()[0].strip() if standalone.strip() else ""
    return standalone or question
