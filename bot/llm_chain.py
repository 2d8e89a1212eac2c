"""The LLM answer as a LangChain chain of runnables: retriever → prompt → chat model →
parser → quote check, streaming verified sentences as the model writes them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.runnables import (
    Runnable,
    RunnableGenerator,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)

from bot.llm import Output, build_messages
from bot.llm_reply import ParsedReply, parse_reply, reply_text
from bot.llm_verify import SentenceVerifier, VerifiedStream
from bot.prompts import ANSWER_SCHEMA
from bot.retrieval import HybridRetriever, Retrieved
from index.models import Article


@dataclass
class LLMRequest:
    """A question with the passages the answer may quote (numbered from 1 in the prompt)."""

    question: str
    retrieved: list[Retrieved]
    articles: dict[str, Article]


@dataclass
class Draft:
    """What the model has written so far, parsed; `final` once it has finished."""

    reply: ParsedReply
    final: bool = False
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """The quote check's view after each step: sentences just released, and all so far."""

    released: list[str]
    verifier: SentenceVerifier
    final: bool = False
    cannot_answer: bool = False
    usage: dict[str, Any] = field(default_factory=dict)


def answer_schema(passages: int) -> dict[str, Any]:
    """ANSWER_SCHEMA with passage numbers bounded to the prompt's passages: a server that
    turns the schema into a grammar (llama.cpp) can then write no other number (SmolLM2,
    unbounded, wrote 1111111111111111 for most of its quotes)."""
    schema: dict[str, Any] = copy.deepcopy(ANSWER_SCHEMA)
    number = schema["properties"]["quotes"]["items"]["properties"]["passage"]
    number.update(minimum=1, maximum=max(1, passages))
    return schema


def structured_model(model: BaseChatModel, output: Output, passages: int,
                     ) -> Runnable[Any, BaseMessage]:
    """The chat model asked for the answer schema (for this many passages) as structured
    output (JSON schema or a forced tool call), or as it is for the text protocol.

    `with_structured_output` builds the request; its strict parser is left out so that our
    lenient one also reads a server that answers in text instead (many ignore the schema).
    """
    if output == "text":
        return model
    method = "json_schema" if output == "json_schema" else "function_calling"
    structured = model.with_structured_output(answer_schema(passages), method=method)
    if isinstance(structured, RunnableSequence):
        return structured.first  # the model bound to the schema
    return model


def _prompt(request: LLMRequest, *, output: Output) -> list[BaseMessage]:
    return build_messages(request.question, request.retrieved, request.articles, output)


def _parse(chunks: Iterator[BaseMessage]) -> Iterator[Draft]:
    """Each growing reply parsed leniently; the last Draft is final and carries the usage."""
    reply: BaseMessage | None = None
    try:
        for chunk in chunks:
            # Chunks add up (text and tool-call arguments alike); a whole message replaces.
            reply = reply + chunk if isinstance(reply, BaseMessageChunk) else chunk
            yield Draft(parse_reply(reply_text(reply), final=False))
    except Exception as exc:
        # The OpenAI client raises when structured output stops at max_tokens; what was
        # written until then is still read (and checked) like any reply.
        if type(exc).__name__ != "LengthFinishReasonError" or reply is None:
            raise
    if reply is None:
        yield Draft(ParsedReply(), final=True)
        return
    usage = getattr(reply, "usage_metadata", None) or {}
    yield Draft(parse_reply(reply_text(reply), final=True), final=True, usage=dict(usage))


def _quote_check(parts: Iterator[dict[str, Any]]) -> Iterator[Progress]:
    """Verify each draft's sentences against the request's passages, releasing them in order."""
    stream: VerifiedStream | None = None
    waiting: list[Draft] = []
    for part in parts:
        if "request" in part:
            request: LLMRequest = part["request"]
            stream = VerifiedStream(
                SentenceVerifier(request.question, request.retrieved, request.articles)
            )
        if "reply" in part:
            waiting.append(part["reply"])
        if stream is None:
            continue
        for draft in waiting:
            released = stream.feed(draft.reply, final=draft.final)
            if released or draft.final:
                yield Progress(released, stream.verifier, draft.final, stream.cannot_answer,
                               draft.usage)
        waiting.clear()


def answer_chain(model: BaseChatModel, output: Output) -> Runnable[LLMRequest, Progress]:
    """prompt → chat model → parser, beside the request, → quote check."""

    def prompt_and_model(request: LLMRequest) -> Runnable[LLMRequest, BaseMessage]:
        """The prompt, and the model asked for a schema that fits this request."""
        return (RunnableLambda(partial(_prompt, output=output), name="prompt")
                | structured_model(model, output, len(request.retrieved)))

    reply: Runnable[LLMRequest, Draft] = (
        RunnableLambda(prompt_and_model, name="prompt_and_model")
        | RunnableGenerator(_parse, name="parse")
    )
    return (
        RunnableParallel(request=RunnablePassthrough(), reply=reply)
        | RunnableGenerator(_quote_check, name="quote_check")
    )


def retrieval_chain(
    retriever: HybridRetriever, model: BaseChatModel, output: Output
) -> Runnable[dict[str, Any], Progress]:
    """The whole retrieval chain from `{"question", "as_of"?}`; the Answerer runs
    `answer_chain` on passages it has already retrieved and judged."""

    def retrieve(inputs: dict[str, Any]) -> LLMRequest:
        question = str(inputs["question"])
        as_of: date | None = inputs.get("as_of")
        retrieved = retriever.retrieve(question, as_of=as_of)
        ids = [r.passage.article_id for r in retrieved]
        return LLMRequest(question, retrieved, retriever.store.get_articles(ids))

    return RunnableLambda(retrieve, name="retriever") | answer_chain(model, output)
