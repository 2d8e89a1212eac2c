"""Tests that the real OpenAI and Ollama LangChain clients work against ScriptedLLMServer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tests.support.llm_server import ScriptedLLMServer, last_user_text, prompt_text

pytestmark = pytest.mark.slow  # every test here starts the scripted LLM server


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as srv:
        yield srv


def openai_chat(server: ScriptedLLMServer, **kwargs: Any) -> ChatOpenAI:
    # max_retries=0 unless a test asks otherwise, so a scripted failure is seen exactly once.
    options: dict[str, Any] = {"max_retries": 0, **kwargs}
    return ChatOpenAI(base_url=server.base_url, api_key=SecretStr("x"), model="m", **options)


def test_base_urls(server: ScriptedLLMServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.root_url == f"http://127.0.0.1:{server.port}"


def test_openai_invoke_returns_scripted_text_then_default(server: ScriptedLLMServer) -> None:
    server.enqueue("first answer", "second answer")
    llm = openai_chat(server)
    assert llm.invoke("q1").content == "first answer"
    assert llm.invoke("q2").content == "second answer"
    # The queue is empty now, so the default reply answers.
    assert llm.invoke("q3").content == "OK"
    assert server.pending_replies == 0


def test_openai_response_metadata(server: ScriptedLLMServer) -> None:
    server.enqueue("three little words")
    message = openai_chat(server).invoke("hi")
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_name"] == "m"
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 3


def test_openai_reply_callable_sees_messages(server: ScriptedLLMServer) -> None:
    server.enqueue(lambda messages: f"echo: {last_user_text(messages)}")
    server.set_default_reply(lambda messages: "yes" if "MAGIC" in prompt_text(messages) else "no")
    llm = openai_chat(server)
    assert llm.invoke("hello there").content == "echo: hello there"
    prompt = [SystemMessage("The word is MAGIC."), HumanMessage("Say it.")]
    assert llm.invoke(prompt).content == "yes"
    assert llm.invoke("nothing here").content == "no"


def test_openai_streaming(server: ScriptedLLMServer) -> None:
    text = "Streaming works, word by word."
    server.enqueue(text)
    chunks = list(openai_chat(server).stream("go"))
    contents = [c.content for c in chunks if c.content]
    assert len(contents) > 1
    assert "".join(contents) == text  # type: ignore[arg-type]
    body = server.last_chat_request.json
    assert body["stream"] is True


def test_openai_streaming_with_usage(server: ScriptedLLMServer) -> None:
    server.enqueue("four words of text")
    llm = openai_chat(server, stream_usage=True)
    total = None
    for chunk in llm.stream("go"):
        total = chunk if total is None else total + chunk
    assert total is not None
    assert total.content == "four words of text"
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == 4
    assert server.last_chat_request.json["stream_options"] == {"include_usage": True}


async def test_openai_async_invoke_and_stream(server: ScriptedLLMServer) -> None:
    server.enqueue("async reply", "async stream reply")
    llm = openai_chat(server)
    assert (await llm.ainvoke("q")).content == "async reply"
    parts = [c.content async for c in llm.astream("q")]
    assert "".join(parts) == "async stream reply"  # type: ignore[arg-type]


def test_ollama_invoke(server: ScriptedLLMServer) -> None:
    server.enqueue("from ollama")
    llm = ChatOllama(base_url=server.root_url, model="m")
    assert llm.invoke("hi").content == "from ollama"
    request = server.last_chat_request
    assert request.path == "/api/chat"
    assert request.messages == [{"role": "user", "content": "hi"}]


def test_ollama_stream_non_stream_and_model_validation(server: ScriptedLLMServer) -> None:
    server.enqueue("one two three", "not streamed")
    # validate_model_on_init lists models via GET /api/tags.
    llm = ChatOllama(base_url=server.root_url, model="m", validate_model_on_init=True)
    contents = [c.content for c in llm.stream("hi") if c.content]
    assert contents == ["one ", "two ", "three"]
    assert llm.invoke("hi", stream=False).content == "not streamed"
    assert server.last_chat_request.json["stream"] is False
    assert any(r.path == "/api/tags" for r in server.requests)


def test_ollama_native_client(server: ScriptedLLMServer) -> None:
    client = ollama.Client(host=server.root_url)
    assert client.list().models[0].model == "m:latest"
    server.enqueue("native")
    assert client.chat(model="m", messages=[{"role": "user", "content": "x"}]).message.content == (
        "native"
    )


def test_ollama_failure_raises_response_error(server: ScriptedLLMServer) -> None:
    server.fail_with(status=500, message="model exploded")
    llm = ChatOllama(base_url=server.root_url, model="m")
    with pytest.raises(ollama.ResponseError) as info:
        llm.invoke("hi")
    assert info.value.status_code == 500
    assert info.value.error == "model exploded"


def test_openai_500_raises_api_error(server: ScriptedLLMServer) -> None:
    server.fail_with(status=500, message="boom")
    llm = openai_chat(server)
    with pytest.raises(openai.APIError) as info:
        llm.invoke("hi")
    # langchain_openai re-raises InternalServerError as its own subclass of it.
    assert isinstance(info.value, openai.InternalServerError)
    assert info.value.status_code == 500
    assert info.value.body == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    # The failure was used up: the next request is answered normally.
    assert llm.invoke("hi").content == "OK"


def test_failures_are_retried_by_the_client(server: ScriptedLLMServer) -> None:
    # retry_after keeps the openai client's backoff short.
    server.fail_with(status=503, times=2, retry_after=0.01)
    server.enqueue("after retries")
    llm = openai_chat(server, max_retries=2)
    assert llm.invoke("hi").content == "after retries"
    assert len(server.chat_requests) == 3


def test_429_raises_rate_limit_error(server: ScriptedLLMServer) -> None:
    server.fail_with(status=429, code="rate_limit_exceeded")
    with pytest.raises(openai.RateLimitError):
        openai_chat(server).invoke("hi")


def test_hang_times_out(server: ScriptedLLMServer) -> None:
    server.hang(30)
    server.enqueue("late")
    llm = openai_chat(server, timeout=1)
    with pytest.raises(openai.APITimeoutError):
        llm.invoke("hi")
    # The abandoned request did not use up the queued reply.
    assert server.pending_replies == 1


def test_stop_wakes_hung_requests() -> None:
    srv = ScriptedLLMServer().start()
    srv.hang(60)
    llm = openai_chat(srv, timeout=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            llm.invoke("hi")
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not srv.chat_requests:
        time.sleep(0.01)
    srv.stop()
    caller.join(timeout=60)  # a bound on a broken run only: the client gives up after 30 s
    assert not caller.is_alive()
    # The woken request was answered 503 by the stopping server; had stop() left it hanging,
    # the client's own timeout would have ended the call (APITimeoutError) instead.
    [error] = errors
    assert isinstance(error, openai.APIStatusError)
    assert error.status_code == 503


def test_requests_are_recorded_with_headers(server: ScriptedLLMServer) -> None:
    llm = ChatOpenAI(
        base_url=server.base_url, api_key=SecretStr("secret-key"), model="m", max_retries=0
    )
    llm.invoke([SystemMessage("sys"), HumanMessage("question")])
    request = server.last_chat_request
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.header("Authorization") == "Bearer secret-key"
    assert request.headers["content-type"] == "application/json"
    assert request.json["model"] == "m"
    assert request.messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "question"},
    ]


def test_models_endpoint(server: ScriptedLLMServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["m"]
    ollama_version = ollama.Client(host=server.root_url)._client.get("/api/version").json()
    assert "version" in ollama_version


def test_broken_reply_callable_answers_500(server: ScriptedLLMServer) -> None:
    def broken(messages: list[dict[str, object]]) -> str:
        raise ValueError("bad test reply")

    server.enqueue(broken)
    with pytest.raises(openai.InternalServerError):
        openai_chat(server).invoke("hi")
    assert isinstance(server.reply_errors[0], ValueError)


def test_reset_and_restart() -> None:
    srv = ScriptedLLMServer()
    with srv:
        srv.enqueue("a")
        srv.fail_with(500)
        srv.reset()
        assert srv.pending_replies == 0
        assert openai_chat(srv).invoke("x").content == "OK"
    srv.stop()  # a second stop is harmless
    assert not srv.running
    port = srv.port
    # While stopped, the URL refuses connections.
    with pytest.raises(openai.APIConnectionError):
        openai_chat(srv).invoke("x")
    with srv:
        assert srv.port == port
        assert openai_chat(srv).invoke("x").content == "OK"
