"""Process harness for end-to-end tests: a real Label Studio and a real tagloop server as subprocesses."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import requests
from label_studio_sdk import LabelStudio

from tools.demo import Credentials, ensure_label_studio, label_studio_env

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 40


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T | None], timeout: float, interval: float = 0.5, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy and return it; ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or 'a condition'}")
        time.sleep(interval)


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def ensure_label_studio_venv(venv: Path) -> Path:
    """Path of ``<venv>/bin/label-studio``; creates the venv and installs Label Studio there if it is absent."""
    return ensure_label_studio(venv, lambda _message: None)


class _ServerProcess:
    """A server subprocess in its own session, logged to a file, ready once ``GET /health`` answers 200."""

    name = "server"

    def __init__(self, url: str, log_path: Path, startup_timeout: float) -> None:
        self.url = url
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaped = True  # nothing left to signal

    @property
    def pid(self) -> int:
        """PID of the server process (also its process group id)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        raise NotImplementedError

    def _cwd(self) -> Path | None:
        return None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log file."""
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return "(no log file)"

    def start(self) -> Self:
        """Start the process (again, after a stop or kill) and wait until it is healthy."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self._cwd(),
                start_new_session=True,
            )
        self._reaped = False
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(f"{self.name} exited with code {code} before it was healthy:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.name} did not answer GET {self.url}/health with 200 within "
                    f"{self.startup_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the process group, then SIGKILL if it is still alive after ``timeout`` s."""
        if self._proc is None or self._reaped:
            return
        if self._proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait()
        self._signal_group(signal.SIGKILL)  # children left in the group, if any
        self._reaped = True

    def kill(self) -> None:
        """SIGKILL the process group at once (simulates a crash)."""
        if self._proc is None or self._reaped:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait()
        self._reaped = True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LabelStudioServer(_ServerProcess):
    """``label-studio start`` on 127.0.0.1 with a fresh admin user and a legacy API token."""

    name = "Label Studio"

    def __init__(
        self, executable: Path, data_dir: Path, *, port: int | None = None, startup_timeout: float = 180.0
    ) -> None:
        self.executable = executable
        self.data_dir = data_dir
        self.port = port or free_port()
        self.username = "admin@example.com"
        self.password = secrets.token_urlsafe(16)
        self.token = secrets.token_hex(20)
        super().__init__(f"http://127.0.0.1:{self.port}", data_dir / "label-studio.log", startup_timeout)

    def _command(self) -> list[str]:
        return [
            str(self.executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port)
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        return label_studio_env(self.data_dir, Credentials(self.username, self.password, self.token))

    def _cwd(self) -> Path:
        return self.data_dir

    def start(self) -> Self:
        """Create the data dir, start Label Studio and wait until it is healthy."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return super().start()

    def client(self) -> LabelStudio:
        """An SDK client authenticated with the admin's legacy token."""
        return LabelStudio(base_url=self.url, api_key=self.token)  # type: ignore[no-untyped-call]


class TagloopServer(_ServerProcess):
    """``python -m backend serve`` from the repo root, with ``extra_env`` on top of this process's environment."""

    name = "tagloop"

    def __init__(
        self,
        extra_env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.extra_env = dict(extra_env or {})
        self.port = port or free_port()
        if log_path is None:
            data_dir = self.extra_env.get("TAGLOOP_DATA_DIR")
            log_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="tagloop-e2e-"))
            log_path = log_dir / "tagloop-server.log"
        super().__init__(f"http://127.0.0.1:{self.port}", log_path, startup_timeout)

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "backend", "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.extra_env}

    def _cwd(self) -> Path:
        return REPO
