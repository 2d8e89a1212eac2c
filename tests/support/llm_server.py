"""Scripted OpenAI- and Ollama-compatible chat server for tests, run in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class ToolCall:
    """A reply that calls a tool (OpenAI API) instead of writing text: `arguments` is the
    JSON string the model would write."""

    name: str
    arguments: str


# A reply is fixed text, a tool call, or a function of the request's messages (as the client
# sent them), so a test can echo, or comply with, something it finds in the prompt.
Reply = str | ToolCall | Callable[[Messages], str]

# Version reported by GET /api/version; any recent Ollama release number will do for clients.
OLLAMA_VERSION = "0.12.6"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def message_text(message: Mapping[str, Any]) -> str:
    """Return a chat message's text, whether its content is a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # OpenAI's multi-part content: [{"type": "text", "text": "..."}, {"type": "image_url", ...}]
    parts = [part.get("text", "") for part in content if isinstance(part, Mapping)]
    return "".join(p for p in parts if isinstance(p, str))


def prompt_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """Join the text of all messages, one per line, for replies that search the whole prompt."""
    return "\n".join(message_text(m) for m in messages)


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Return the text of the last user message, or "" if there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received, recorded before it was answered."""

    method: str
    path: str
    # Header names are lower-cased so lookups do not depend on how a client spells them.
    headers: dict[str, str]
    raw_body: bytes
    # The parsed JSON body, or None when the body was empty or not JSON.
    json: Any
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        """Return a header's value by case-insensitive name."""
        return self.headers.get(name.lower())

    @property
    def messages(self) -> Messages:
        """Return the chat messages of a chat request ([] for other requests)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return self.json["messages"]
        return []

    @property
    def is_chat(self) -> bool:
        """Whether this was a chat-completion request (OpenAI or Ollama)."""
        return self.method == "POST" and self.path in ("/v1/chat/completions", "/api/chat")


@dataclass(frozen=True)
class _Failure:
    status: int
    message: str
    error_type: str | None
    code: str | None
    retry_after: float | None


def _default_error_type(status: int) -> str:
    # The `type` OpenAI puts in its error bodies for these statuses.
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _split_for_stream(text: str) -> list[str]:
    # Word-sized pieces (each with its trailing whitespace) so a stream has several chunks and
    # joining them gives back the exact text.
    return re.findall(r"\s*\S+\s*|\s+", text)


def _word_count(text: str) -> int:
    return len(text.split())


class ScriptedLLMServer:
    """An OpenAI- and Ollama-compatible chat server whose replies are scripted by the test.

    Each chat request (POST /v1/chat/completions or POST /api/chat) is answered in this order:
    a pending `hang` first delays it; then a pending `fail_with` failure, if any, answers it
    with an error; otherwise the next `enqueue`d reply, or the default reply when the queue is
    empty. Every request, to any path, is recorded in `requests`.
    """

    def __init__(
        self,
        default_reply: Reply = "OK",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = ("m",),
    ) -> None:
        self.host = host
        # 0 lets the OS pick a free port at the first start(), with no probe-then-bind race.
        self._requested_port = port
        self.models = list(models)
        self._default_reply: Reply = default_reply
        # State shared between the test's thread and the server's loop thread.
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._failures: deque[_Failure] = deque()
        self._hangs: deque[float] = deque()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        # Seconds between streamed chunks, so a client sees a reply arrive over time.
        self.chunk_delay_s = 0.0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections.

        The first start binds the `port` given to the constructor (a free one by default);
        a start after stop() binds the same port again, for "server goes down and comes
        back" tests.
        """
        if self._thread is not None:
            raise RuntimeError("ScriptedLLMServer is already running")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="scripted-llm-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("ScriptedLLMServer did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError("ScriptedLLMServer failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop the server, waking any hung requests; safe to call more than once."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        # _port is kept: the URLs stay valid (and refuse connections) until start() binds again.

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The server's port; it stays the same across stop() and a later start()."""
        if self._port is None:
            raise RuntimeError("ScriptedLLMServer has not been started")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server is currently serving."""
        return self._thread is not None

    @property
    def root_url(self) -> str:
        """Server root, e.g. "http://127.0.0.1:PORT" (Ollama clients take this)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL ending in "/v1" (OpenAI clients take this)."""
        return f"{self.root_url}/v1"

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies for the next chat requests, in order (text or reply(messages) -> str)."""
        with self._lock:
            self._replies.extend(replies)

    def set_default_reply(self, reply: Reply) -> None:
        """Set the reply used when the queue is empty."""
        with self._lock:
            self._default_reply = reply

    def fail_with(
        self,
        status: int = 500,
        times: int = 1,
        *,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next `times` chat requests with an HTTP error instead of a reply.

        The body is OpenAI's error JSON on /v1 and Ollama's {"error": ...} on /api. Every
        HTTP attempt counts, including a client's own retries (the openai client retries 500s
        twice by default). `retry_after` (seconds) is sent as `retry-after-ms`, which the
        openai client honours instead of its own 0.5-8 s backoff.
        """
        failure = _Failure(
            status=status,
            message=message or f"Scripted failure (HTTP {status})",
            error_type=error_type,
            code=code,
            retry_after=retry_after,
        )
        with self._lock:
            self._failures.extend([failure] * times)

    def hang(self, seconds: float = 30.0, times: int = 1) -> None:
        """Delay the next `times` chat requests by `seconds` before answering them.

        Use it with a client timeout shorter than `seconds`. A hung request whose client has
        gone away by the time it wakes consumes no scripted failure or reply; `stop()` wakes
        hung requests at once.
        """
        with self._lock:
            self._hangs.extend([seconds] * times)

    def reset(self) -> None:
        """Forget queued replies, failures, hangs, recorded requests and reply errors."""
        with self._lock:
            self._replies.clear()
            self._failures.clear()
            self._hangs.clear()
            self._requests.clear()
            self._errors.clear()

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completion requests received so far, oldest first."""
        return [r for r in self.requests if r.is_chat]

    @property
    def last_chat_request(self) -> RecordedRequest:
        """The most recent chat-completion request."""
        chats = self.chat_requests
        if not chats:
            raise LookupError("no chat request has been received")
        return chats[-1]

    @property
    def pending_replies(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._replies)

    @property
    def reply_errors(self) -> list[BaseException]:
        """Exceptions raised by reply callables (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    # ----------------------------------------------------------------- server thread

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported to start()'s caller
            self._startup_error = exc
            ready.set()
            loop.close()
            self._loop = None
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            # Cancel whatever is left (e.g. handlers of connections reset mid-stop).
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _setup(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record_middleware])
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_get("/v1/models", self._openai_models)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        app.router.add_get("/api/version", self._ollama_version)
        app.router.add_get("/", self._ollama_root)
        # A short shutdown_timeout: the 60 s default would make stop() wait on hung handlers.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        # A restart binds the port of the first start so clients' URLs keep working.
        port = self._port if self._port is not None else self._requested_port
        site = web.TCPSite(runner, self.host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        sockname = runner.addresses[0]
        self._port = int(sockname[1])

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        raw = await request.read()  # cached by aiohttp, so handlers can read it again
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw_body=raw,
            json=body,
        )
        with self._lock:
            self._requests.append(record)
        return await handler(request)

    # ----------------------------------------------------------------- chat flow

    async def _next_outcome(
        self, request: web.Request, messages: Messages
    ) -> _Failure | str | ToolCall | None:
        """Decide a chat request's fate: a failure, the reply text, or None if abandoned."""
        with self._lock:
            hang = self._hangs.popleft() if self._hangs else None
        if hang is not None:
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=hang)
            transport = request.transport
            if self._stopping.is_set() or transport is None or transport.is_closing():
                return None
        with self._lock:
            if self._failures:
                return self._failures.popleft()
            reply = self._replies.popleft() if self._replies else self._default_reply
        if isinstance(reply, str | ToolCall):
            return reply
        try:
            return reply(messages)
        except Exception as exc:
            # Surface a broken reply function as a server error rather than a hang.
            with self._lock:
                self._errors.append(exc)
            return _Failure(500, f"reply callable raised {exc!r}", None, None, None)

    @staticmethod
    def _failure_headers(failure: _Failure) -> dict[str, str]:
        if failure.retry_after is None:
            return {}
        return {"retry-after-ms": str(int(failure.retry_after * 1000))}

    async def _read_chat_body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # ----------------------------------------------------------------- OpenAI

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_chat_body(request)
        if body is None or not isinstance(body.get("messages"), list):
            return self._openai_error(
                _Failure(400, "Request body must be JSON with a 'messages' list.", None, None, None)
            )
        outcome = await self._next_outcome(request, body["messages"])
        if outcome is None:
            return web.Response(status=503)  # nobody is listening any more
        if isinstance(outcome, _Failure):
            return self._openai_error(outcome)
        model = str(body.get("model", ""))
        if body.get("stream"):
            return await self._openai_stream(request, body, model, outcome)
        prompt_tokens = _word_count(prompt_text(body["messages"]))
        written = outcome.arguments if isinstance(outcome, ToolCall) else outcome
        completion_tokens = _word_count(written)
        message: dict[str, Any] = {
            "role": "assistant", "content": outcome, "refusal": None, "annotations": [],
        }
        if isinstance(outcome, ToolCall):
            message["content"] = None
            message["tool_calls"] = [{
                "id": "call_1", "type": "function",
                "function": {"name": outcome.name, "arguments": outcome.arguments},
            }]
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if isinstance(outcome, ToolCall) else "stop",
                    }
                ],
                "usage": self._openai_usage(prompt_tokens, completion_tokens),
                "service_tier": "default",
                "system_fingerprint": None,
            }
        )

    @staticmethod
    def _openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def _openai_stream(
        self, request: web.Request, body: dict[str, Any], model: str, outcome: str | ToolCall
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        base: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": None,
        }
        if include_usage:
            # OpenAI sends "usage": null on every chunk but the last when usage is requested.
            base["usage"] = None

        def choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        chunks: list[dict[str, Any]] = [
            {
                **base,
                "choices": [choice({"role": "assistant", "content": "", "refusal": None}, None)],
            }
        ]
        if isinstance(outcome, ToolCall):
            text = outcome.arguments
            pieces = _split_for_stream(text)
            chunks.append({**base, "choices": [choice({"tool_calls": [{
                "index": 0, "id": "call_1", "type": "function",
                "function": {"name": outcome.name, "arguments": ""},
            }]}, None)]})
            chunks += [
                {**base, "choices": [choice(
                    {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}, None
                )]}
                for p in pieces
            ]
            chunks.append({**base, "choices": [choice({}, "tool_calls")]})
        else:
            text = outcome
            chunks += [
                {**base, "choices": [choice({"content": p}, None)]}
                for p in _split_for_stream(text)
            ]
            chunks.append({**base, "choices": [choice({}, "stop")]})
        if include_usage:
            prompt_tokens = _word_count(prompt_text(body["messages"]))
            usage = self._openai_usage(prompt_tokens, _word_count(text))
            chunks.append({**base, "choices": [], "usage": usage})
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _openai_error(self, failure: _Failure) -> web.Response:
        error = {
            "message": failure.message,
            "type": failure.error_type or _default_error_type(failure.status),
            "param": None,
            "code": failure.code,
        }
        return web.json_response(
            {"error": error}, status=failure.status, headers=self._failure_headers(failure)
        )

    async def _openai_models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "scripted"}
            for name in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    # ----------------------------------------------------------------- Ollama

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_chat_body(request)
        if body is None or not isinstance(body.get("messages"), list):
            return web.json_response({"error": "invalid chat request"}, status=400)
        outcome = await self._next_outcome(request, body["messages"])
        if outcome is None:
            return web.Response(status=503)
        if isinstance(outcome, _Failure):
            return web.json_response(
                {"error": outcome.message},
                status=outcome.status,
                headers=self._failure_headers(outcome),
            )
        if isinstance(outcome, ToolCall):
            outcome = outcome.arguments  # Ollama's tool calls are not scripted: its text
        model = str(body.get("model", ""))
        prompt_tokens = _word_count(prompt_text(body["messages"]))
        final: dict[str, Any] = {
            "model": model,
            "created_at": _ollama_now(),
            "message": {"role": "assistant", "content": outcome},
            "done_reason": "stop",
            "done": True,
            # Plausible nanosecond timings; clients only pass them through as metadata.
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 200_000,
            "eval_count": _word_count(outcome),
            "eval_duration": 700_000,
        }
        # Ollama streams unless the request says "stream": false.
        if body.get("stream", True) is False:
            return web.json_response(final)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for piece in _split_for_stream(outcome):
            part = {
                "model": model,
                "created_at": _ollama_now(),
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            await response.write(json.dumps(part).encode() + b"\n")
        # Ollama's last line carries the stats and an empty content fragment.
        final["message"] = {"role": "assistant", "content": ""}
        await response.write(json.dumps(final).encode() + b"\n")
        await response.write_eof()
        return response

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        models = []
        for name in self.models:
            # Ollama lists models with their tag; langchain_ollama accepts "m" for "m:latest".
            tagged = name if ":" in name else f"{name}:latest"
            models.append(
                {
                    "name": tagged,
                    "model": tagged,
                    "modified_at": _ollama_now(),
                    "size": 1_000_000,
                    "digest": uuid.uuid5(uuid.NAMESPACE_URL, tagged).hex * 2,
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "scripted",
                        "families": ["scripted"],
                        "parameter_size": "1B",
                        "quantization_level": "Q4_0",
                    },
                }
            )
        return web.json_response({"models": models})

    async def _ollama_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": OLLAMA_VERSION})

    async def _ollama_root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")


def _ollama_now() -> str:
    # Ollama's timestamps are RFC 3339 in UTC with a "Z" suffix.
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
