"""LLM answers through LangChain chat models: prompt, parse, and keep only verified quotes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from bot.errors import LLMUnavailable
from bot.models import Citation
from bot.prompts import (
    CANNOT_ANSWER_MARKER,
    CONDENSE_PROMPT,
    PASSAGE,
    SYSTEM_PROMPT,
    USER_PROMPT,
)
from bot.quotes import locate_quote, make_citation
from bot.retrieval import Retrieved
from bot.safety import (
    LINK_LIKE,
    is_instruction_like,
    link_or_markup_spans,
    mask_instructions,
)
from bot.settings import LLMSettings, llm_api_key
from index.keyword import tokenize
from index.models import Article

_QUOTE_LINE = re.compile(r"^\s*\[(\d+)\]\s*[:\-]?\s*(.+?)\s*$")
_MARKER = re.compile(r"\s*\[(\d+)\]")
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)(?:\s*\[\d+\])*")
# A token with a digit, or of capitals and dashes, is specific: it must come from a quote.
_SPECIFIC = re.compile(r"\b(?=\w*\d)[\w-]{3,}\b|\b[A-Z]{2,}(?:-\w+)+\b")


def make_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The configured chat model, or None for the extractive (offline) default."""
    if settings.provider == "none":
        return None
    if settings.provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=settings.model or "gpt-4o-mini",
            base_url=settings.base_url or None,
            api_key=llm_api_key() or "not-needed",
            timeout=settings.timeout_s,
            max_retries=0,
            temperature=settings.temperature,
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.model or "llama3.2",
        base_url=settings.base_url or None,
        temperature=settings.temperature,
        client_kwargs={"timeout": settings.timeout_s},
    )


def _fence(text: str) -> str:
    """Article text can never close its own fence or open a new one."""
    return html.escape(text, quote=False)


def build_messages(question: str, retrieved: list[Retrieved], articles: dict[str, Article]) -> list:
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
        SystemMessage(SYSTEM_PROMPT),
        HumanMessage(USER_PROMPT.format(passages=passages, question=question)),
    ]


def call(model: BaseChatModel, messages: list) -> str:
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


@dataclass
class ParsedReply:
    """The answer prose and the quotes the model claims, by passage number."""

    answer: str
    quotes: list[tuple[int, str]]
    cannot_answer: bool


def parse_reply(reply: str) -> ParsedReply:
    if reply.strip().upper().startswith(CANNOT_ANSWER_MARKER):
        return ParsedReply("", [], True)
    head, _, tail = reply.partition("QUOTES:")
    answer = re.sub(r"^\s*ANSWER:\s*", "", head.strip())
    quotes = []
    for line in tail.splitlines():
        match = _QUOTE_LINE.match(line)
        if match:
            quotes.append((int(match.group(1)), match.group(2)))
    return ParsedReply(answer.strip(), quotes, False)


def verified_answer(
    parsed: ParsedReply,
    retrieved: list[Retrieved],
    articles: dict[str, Article],
    question: str,
) -> tuple[str, list[Citation]]:
    """Keep the quotes that stand in their passage's article, renumber them, and keep only
    prose sentences backed by a kept quote and carrying nothing the quotes don't say (and
    no link or markup: a hostile passage's URL must not become the answer's)."""
    citations: list[Citation] = []
    new_number: dict[int, int] = {}
    for n, claimed in parsed.quotes:
        if n in new_number or not 1 <= n <= len(retrieved):
            continue
        passage = retrieved[n - 1].passage
        article = articles.get(passage.article_id)
        if article is None:
            continue
        span = locate_quote(article, claimed, near=passage.start)
        if span is None or is_instruction_like(article.text[span[0] : span[1]]):
            continue
        citation = make_citation(len(citations) + 1, article, *span, heading=passage.heading)
        if citation is not None:
            new_number[n] = citation.n
            citations.append(citation)

    sentences = []
    not_prose = link_or_markup_spans(parsed.answer)
    for match in _SENTENCE.finditer(parsed.answer):
        sentence = match.group()
        if any(a < match.end() and match.start() < b for a, b in not_prose):
            continue  # a link or markup: the quotes may show one, the prose never carries it
        markers = [int(m) for m in _MARKER.findall(sentence)]
        if not any(m in new_number for m in markers):
            continue  # unsupported prose is dropped, whatever it says
        prose = _MARKER.sub("", sentence).strip()
        # What stands only inside a link (a token in a URL) supports nothing.
        support = LINK_LIKE.sub(" ", " ".join(
            [question, *(citations[new_number[m] - 1].quote for m in markers if m in new_number)]
        ))
        if any(token not in support for token in _SPECIFIC.findall(prose)):
            continue  # a number or code the quotes don't carry: not grounded
        if not _mostly_grounded(prose, support):
            continue
        sentences.append(sentence.strip())
    used = [new_number[int(m)] for s in sentences for m in _MARKER.findall(s)
            if int(m) in new_number]
    kept_citations = [c for c in citations if c.n in set(used)]
    renumber = {c.n: i for i, c in enumerate(kept_citations, 1)}

    def renumbered(match: re.Match[str]) -> str:
        old = new_number.get(int(match.group(1)))
        return f" [{renumber[old]}]" if old is not None else ""

    text = " ".join(_MARKER.sub(renumbered, s) for s in sentences)
    final = [
        Citation(renumber[c.n], c.quote, c.start, c.end, c.article, c.link, c.heading)
        for c in kept_citations
    ]
    return text.strip(), final


def _mostly_grounded(prose: str, support: str) -> bool:
    """Half or more of the prose's content words appear in the question or its quotes."""
    words = set(tokenize([prose])[0])
    if not words:
        return False
    return len(words & set(tokenize([support])[0])) / len(words) >= 0.5


def condense(model: BaseChatModel, history: list[tuple[str, str]], question: str) -> str:
    """A follow-up rewritten as a standalone question (falls back to the question itself)."""
    lines = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)
    try:
        standalone = call(
            model, [HumanMessage(CONDENSE_PROMPT.format(history=lines, question=question))]
        )
    except LLMUnavailable:
        return question
    standalone = standalone.strip().splitlines()[0].strip() if standalone.strip() else ""
    return standalone or question
