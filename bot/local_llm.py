"""A GGUF model served by llama.cpp inside this process (the `xllamacpp` wheel): an
OpenAI-compatible server on 127.0.0.1, started on first use and stopped with the process."""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import LLMUnavailable, SettingsError
from bot.settings import LLMSettings

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"
# Large enough for any platform's `struct sigaction` (Linux x86-64: 152 bytes).
_SIGACTION_BYTES = 512


class LocalModelServer:
    """One llama.cpp server for one model file; `base_url` starts it the first time."""

    def __init__(self, model_path: Path, *, threads: int, context_size: int) -> None:
        self.model_path = model_path
        self.threads = threads
        self.context_size = context_size
        self._server: object | None = None
        self._address = ""
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The server's OpenAI-style /v1 URL, starting the server if it is not running."""
        with self._lock:
            if self._server is None:
                self._start()
            return f"{self._address}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _start(self) -> None:
        check_model_file(self.model_path)
        try:
            import xllamacpp
        except ImportError:
            raise SettingsError(
                'llm.provider = "local" needs the local extra: pip install "dossier[local]"'
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.hostnames = ["127.0.0.1"]  # never reachable from another machine
        params.port = 0  # a free port, chosen by the OS at bind time
        params.n_ctx = self.context_size
        params.n_parallel = 1  # one slot: the whole context for each question
        params.use_jinja = True  # the model's own chat template, with tool calls
        threads = self.threads or max(1, (os.cpu_count() or 2) // 2)
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1  # llama.cpp's per-request log lines stay out of the terminal
        params.endpoint_metrics = True  # for the wait below; on 127.0.0.1 only
        with _signal_handlers_kept():
            try:
                server = xllamacpp.Server(params)
            except RuntimeError as exc:
                raise LLMUnavailable(
                    f"llama.cpp could not load {self.model_path.name}: is it a GGUF model "
                    f"file it supports? ({exc})"
                ) from None
            # llama.cpp reports itself ready, then installs its signal handlers and starts
            # its task loop. A stop before that loop runs is lost (the loop marks itself
            # running as it starts) and the destructor waits forever: Ctrl-C right after
            # start-up hung `dossier chat`. The metrics request is answered by that loop,
            # so once it returns a stop is heard, and the handlers to undo are in place.
            server.handle_metrics()
        self._server = server
        self._address = str(server.listening_address)
        log.info("local model %s served on %s", self.model_path.name, self._address)

    def stop(self, *, announce: bool = True) -> None:
        """Stop the server (its destructor ends llama.cpp's loop and frees the model)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            del server
            if announce:
                log.info("local model server stopped")


def check_model_file(path: Path) -> None:
    """A one-line error for a missing or unreadable file, or one that is not GGUF."""
    if not path.is_file():
        raise SettingsError(f"llm.model_path: no model file at {path}")
    try:
        with path.open("rb") as file:
            magic = file.read(len(_GGUF_MAGIC))
    except OSError as exc:
        raise SettingsError(f"llm.model_path: cannot read {path}: {exc.strerror}") from None
    if magic != _GGUF_MAGIC:
        raise SettingsError(f"llm.model_path: {path} is not a GGUF model file")


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """llama.cpp's server installs its own SIGINT and SIGTERM handlers, which would stop
    only its loop and leave Ctrl-C and SIGTERM unable to end Dossier. The process-wide
    handlers are saved before and put back after, from whatever thread starts the server
    (Python's `signal.signal` works only in the main thread)."""
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None
    if libc is None or not hasattr(libc, "sigaction"):
        yield  # no libc sigaction (not a POSIX system): nothing to keep
        return
    saved = {sig: ctypes.create_string_buffer(_SIGACTION_BYTES)
             for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, buffer in saved.items():
        libc.sigaction(int(sig), None, buffer)
    try:
        yield
    finally:
        for sig, buffer in saved.items():
            libc.sigaction(int(sig), buffer, None)


_servers: dict[Path, LocalModelServer] = {}
_servers_lock = threading.Lock()


def local_server(settings: LLMSettings) -> LocalModelServer:
    """The process's server for `settings.model_path` (one per file, stopped at exit)."""
    if not settings.model_path.strip():
        raise SettingsError('llm.model_path: set it to a GGUF file for llm.provider = "local"')
    path = Path(settings.model_path).expanduser().resolve()
    with _servers_lock:
        server = _servers.get(path)
        if server is None:
            check_model_file(path)
            server = LocalModelServer(
                path, threads=settings.threads, context_size=settings.context_size
            )
            _servers[path] = server
        return server


@atexit.register
def _stop_all() -> None:
    for server in list(_servers.values()):
        server.stop(announce=False)  # at exit the log's streams may be closed already
