"""Start, stop and restart a real Chroma server (chromadb's `chroma run`) for tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Self

HEARTBEAT_PATH = "/api/v2/heartbeat"

# Servers still running when the interpreter exits (a test forgot to stop one) are stopped
# then, so no `chroma run` process outlives the test session.
_live_servers: weakref.WeakSet[ChromaServer] = weakref.WeakSet()


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.stop()


class ChromaServerError(RuntimeError):
    """The Chroma server could not be started (the message includes its output)."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free on `host` right now."""
    # `chroma run` needs a concrete port, so probe one; start() retries if it is taken meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def chroma_command() -> list[str]:
    """The command that runs chromadb's CLI from this interpreter's environment."""
    # The console script sits next to the interpreter in a virtualenv's bin folder; use it so
    # the server is the same chromadb version as the client under test.
    script = Path(sys.executable).parent / "chroma"
    if script.exists():
        return [str(script)]
    # No console script (e.g. a system interpreter): run the same entry point it would.
    code = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"
    return [sys.executable, "-c", code]


class ChromaServer:
    """A `chroma run` subprocess serving one persistence directory on 127.0.0.1.

    stop() keeps the data and the port, so a later start() brings the same server back;
    leaving the `with` block (or close()) also deletes the directory if this object made it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self._owns_path = path is None
        self.path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="chroma-"))
        self.host = host
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port(host)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        # The server's stdout and stderr go to a file, not a pipe: nobody reads a pipe while
        # the server runs, and a full pipe would block it.
        fd, log_name = tempfile.mkstemp(prefix="chroma-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_name)
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (unchanged by stop() and start())."""
        return self._port

    @property
    def url(self) -> str:
        """The server's base URL, e.g. "http://127.0.0.1:PORT"."""
        return f"http://{self.host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (None when stopped)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """Everything the server has printed so far (all starts)."""
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def heartbeat(self, timeout: float = 1.0) -> bool:
        """Whether GET /api/v2/heartbeat answers 200 right now."""
        # No proxies: a proxy configured in the environment must not see 127.0.0.1 requests.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + HEARTBEAT_PATH, timeout=timeout) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> Self:
        """Start the server and wait for its heartbeat; raises ChromaServerError on failure."""
        if self.running:
            raise ChromaServerError(f"Chroma server is already running at {self.url}")
        self.path.mkdir(parents=True, exist_ok=True)
        # A port picked by free_port() can be taken before chroma binds it; pick another then,
        # but only before the first successful start, so clients' URLs never change.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._launch_and_wait()
            except _EarlyExit as exc:
                if attempt + 1 < attempts and _looks_like_port_clash(str(exc)):
                    self._port = free_port(self.host)
                    continue
                raise ChromaServerError(str(exc)) from None
            self._fixed_port = True
            _live_servers.add(self)
            return self
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); the data stays on disk."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _live_servers.discard(self)

    def close(self) -> None:
        """Stop the server and delete its log, and its directory if this object created it."""
        self.stop()
        self.log_path.unlink(missing_ok=True)
        if self._owns_path:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ChromaServer({self.url}, path={str(self.path)!r}, {state})"

    def _launch_and_wait(self) -> None:
        self._log = self.log_path.open("ab")
        self._log.write(f"--- chroma run on port {self._port}\n".encode())
        self._log.flush()
        command = [
            *chroma_command(),
            "run",
            "--path",
            str(self.path),
            "--host",
            self.host,
            "--port",
            str(self._port),
        ]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own session: a Ctrl-C in the terminal reaches pytest, whose teardown then
            # stops the server, instead of killing the server mid-test.
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self.stop()  # closes the log; there is no process left to end
                raise _EarlyExit(
                    f"chroma run exited with code {code} before answering on {self.url}.\n"
                    f"Command: {' '.join(command)}\nOutput:\n{self.output()}"
                )
            if self.heartbeat(timeout=1.0):
                return
            time.sleep(0.1)
        self.stop()
        raise ChromaServerError(
            f"Chroma server at {self.url} did not answer {HEARTBEAT_PATH} within "
            f"{self.startup_timeout:.0f} s.\nCommand: {' '.join(command)}\n"
            f"Output:\n{self.output()}"
        )


class _EarlyExit(Exception):
    """The server process exited before its heartbeat answered."""


def _looks_like_port_clash(output: str) -> bool:
    # chroma 1.x prints "Address 127.0.0.1:PORT is not available" (and exits with code 0).
    lowered = output.lower()
    return any(s in lowered for s in ("is not available", "address already in use", "addrinuse"))
