"""A local Telegram Bot API server that real python-telegram-bot clients are tested against."""

# Telegram itself is unreachable from the test machines, and mocking PTB's Bot object would
# skip exactly the parts that break in production: serialisation, HTTP error mapping, long
# polling, HTML parse errors and flood control. This server speaks the documented Bot API
# over real HTTP on 127.0.0.1 instead, so the unmodified `telegram.ext.Application` runs
# against it, in-process or in a subprocess:
#
#     with TelegramTestServer() as server:
#         app = (ApplicationBuilder().token(server.token).base_url(server.base_url)
#                .base_file_url(server.base_file_url).build())

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from typing import Any, Self

from aiohttp import web

from tests.support.telegram_server.methods import BotApiMethods
from tests.support.telegram_server.observe import Observation
from tests.support.telegram_server.records import (
    HTTP_PHRASES,
    MAX_UPLOAD_SIZE,
    TOKEN_RE,
    ApiError,
    Fault,
    Request,
    Upload,
    bad_request,
    coerce,
    logger,
)
from tests.support.telegram_server.text import JSONDict
from tests.support.telegram_server.users import UserSide


class TelegramTestServer(BotApiMethods, UserSide, Observation):
    """A Telegram Bot API server on 127.0.0.1 running in its own thread and event loop.

    Bot side: point python-telegram-bot at ``base_url`` / ``base_file_url``. User side:
    ``add_*`` methods queue the updates Telegram would produce. Inspection: ``calls``,
    ``sent_messages``, ``chat_actions``, ``wait_for`` / ``wait_for_async``. Faults: ``inject``.
    Every public method is thread-safe and non-blocking unless it says it waits.
    """

    def __init__(self, token: str | None = None, **options: Any) -> None:
        """Create a stopped server; ``start()`` (or ``with``) runs it."""
        super().__init__(token, **options)
        self._handlers = self.api_methods()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; only valid once started."""
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)`` / ``Bot(base_file_url=...)``."""
        return f"{self.url}/file/bot"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Start serving on a free port of 127.0.0.1 in a background thread."""
        if self.running:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="telegram-test-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Telegram test server did not start within 10 s")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("the Telegram test server failed to start") from failure[0]
        logger.info("Telegram test server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; pending long polls are answered with an empty result first."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = None
        self._loop = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # start()/stop() block for a moment; keep the caller's loop free meanwhile.
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        # access_log=None: aiohttp's access log would print the token-bearing URL path.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        self._wake_pollers("shutdown")
        if self._runner is not None:
            await self._runner.cleanup()


    @staticmethod
    def _json(status: int, payload: JSONDict) -> web.Response:
        return web.json_response(payload, status=status)

    @classmethod
    def _error(
        cls, status: int, description: str, parameters: JSONDict | None = None
    ) -> web.Response:
        payload: JSONDict = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return cls._json(status, payload)

    def _auth_error(self, token: str) -> web.Response | None:
        if token == self._token:
            return None
        # Telegram: a well-formed but wrong token is 401, a malformed one 404.
        if TOKEN_RE.fullmatch(token):
            return self._error(401, "Unauthorized")
        return self._error(404, "Not Found")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request.match_info["token"])
        if denied is not None:
            logger.info("Bot API request with a wrong token refused")
            return denied
        raw_method = request.match_info["method"]
        entry = self._handlers.get(raw_method.lower())
        if entry is None:
            self._record_call(raw_method, {}, request.method, status=404, description="Not Found")
            logger.info("unknown Bot API method %r", raw_method[:64])
            return self._error(404, "Not Found")
        name, handler = entry
        try:
            params, files = await self._read_params(request)
        except ApiError as exc:
            self._record_call(name, {}, request.method, exc.status, exc.description)
            return self._error(exc.status, exc.description)
        summary = {**params}
        for key, upload in files.items():
            summary[key] = {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(upload.content),
            }
        call = self._record_call(name, summary, request.method)
        fault = self._pick_fault(name)
        try:
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.disconnect:
                self._finish_call(call, 0, "connection dropped", injected=True)
                logger.debug("%s: injected disconnect", name)
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never reaches the closed connection
            if fault is not None and fault.status is not None:
                description, parameters = self._fault_reply(fault)
                self._finish_call(call, fault.status, description, injected=True)
                logger.debug("%s -> %d (injected)", name, fault.status)
                return self._error(fault.status, description, parameters)
            result = await handler(Request(params, files))
        except ApiError as exc:
            self._finish_call(call, exc.status, exc.description)
            logger.debug("%s -> %d", name, exc.status)
            return self._error(exc.status, exc.description, exc.parameters)
        except Exception:
            logger.exception("internal error while handling %s", name)
            self._finish_call(call, 500, "Internal Server Error")
            return self._error(500, "Internal Server Error")
        self._finish_call(call, 200, None)
        logger.debug("%s -> 200", name)
        return self._json(200, {"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request.match_info["token"])
        if denied is not None:
            return denied
        with self._lock:
            stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return self._error(404, "Not Found")
        logger.debug("file download -> 200")
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, Upload]]:
        params: JSONDict = dict(request.query)
        files: dict[str, Upload] = {}
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON object expected")
                params.update(body)
            elif request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge:
                    raise ApiError(413, "Request Entity Too Large") from None
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = Upload(value.filename, value.content_type, value.file.read())
                    elif isinstance(value, bytes | bytearray):
                        params[key] = bytes(value).decode("utf-8", "replace")
                    else:
                        params[key] = value
        return {key: coerce(key, value) for key, value in params.items()}, files

    def _pick_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method.lower()) and fault._decide():
                    return fault
        return None

    @staticmethod
    def _fault_reply(fault: Fault) -> tuple[str, JSONDict | None]:
        status = fault.status or 500
        if status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            description = fault.description or f"Too Many Requests: retry after {retry_after}"
            return description, {"retry_after": retry_after}
        description = fault.description or HTTP_PHRASES.get(status, "Error")
        return description, None


    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        seed: int | None = None,
        delay: float = 0.0,
        after: int = 0,
        disconnect: bool = False,
    ) -> Fault:
        """Make calls of ``method`` ("*" = any) fail, stall, or drop the connection.

        ``status`` answers with that HTTP error (429 adds ``parameters.retry_after``, default
        1 s; 502 says "Bad Gateway"; ``description`` overrides the text). ``delay`` sleeps
        first: alone it makes a slow but successful call, and a client that times out meanwhile
        still gets its message delivered, as on Telegram. ``disconnect`` closes the connection
        without answering. ``times`` limits how many calls are affected (default 1 without
        ``rate``, unlimited with it); ``rate`` affects that fraction of calls using a
        random.Random(``seed``); ``after`` lets that many calls through first. A failed call
        never has effects, so no message is delivered. Plans are tried in injection order.
        """
        if status is None and not delay and not disconnect:
            raise ValueError("inject needs status=, delay= or disconnect=True")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if times is None and rate is None:
            times = 1
        fault = Fault(
            method=method if method == "*" else method.lower(),
            status=status,
            retry_after=retry_after,
            description=description,
            times=times,
            rate=rate,
            delay=delay,
            after=after,
            disconnect=disconnect,
            rng=random.Random(self._seed if seed is None else seed),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
