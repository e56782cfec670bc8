"""The one process harness of the e2e tests, the benches and ``tagloop demo``: a real Label Studio and a real
tagloop server as subprocesses on loopback.

Every server runs in its own session (process group), logs to a file and counts as started once
``GET /health`` answers 200; stopping it sends SIGTERM to the group, then SIGKILL, so nothing it started outlives
it. Label Studio runs from its own venv (installed on first use), headless, with a known admin user and legacy
API token, on SQLite in its data dir or on a database of its own on the local PostgreSQL server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import httpx

from backend.errors import TagloopError

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
LABEL_STUDIO_VERSION = "1.23.2"
LsDatabase = Literal["sqlite", "postgresql"]
LS_DATABASES: tuple[LsDatabase, ...] = ("sqlite", "postgresql")
LS_OWN_VARIABLES = (
    *("HOST", "PORT", "USERNAME", "PASSWORD", "DEBUG"),  # Label Studio reads these bare names too
    *("DJANGO_DB", "DATABASE_NAME", "POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST", "POSTGRE_PORT"),
)
"""Variables Label Studio reads as ``NAME``, ``LABEL_STUDIO_NAME`` or ``HEARTEX_NAME``: never inherited, only set."""
LOG_TAIL_LINES = 40
Step = Callable[[str], None]
"""Progress sink: called with a message when a step starts."""


class HarnessError(TagloopError):
    """A server did not start, stopped, or did not reach the state waited for."""

    code = "harness_failed"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(wanted: int | None, option: str) -> int:
    """``wanted`` if it is free (``HarnessError`` naming ``option`` if not), else any free port."""
    if wanted is None:
        return free_port()
    if not port_is_free(wanted):
        raise HarnessError(f"{option}: port {wanted} on 127.0.0.1 is in use; expected a free port (or omit {option})")
    return wanted


def wait_until(predicate: Callable[[], T | None], timeout: float, interval: float = 0.5, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy and return that; ``HarnessError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what or 'a condition'}")
        time.sleep(interval)


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """A process in its own session (process group), logging to ``log_path``; with a ``url``, started once
    ``GET <url>/health`` answers 200. Can be started again after ``stop`` or ``kill``."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        url: str | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.name, self.command, self.url = name, list(command), url
        self.env, self.cwd, self.log_path, self.startup_timeout = dict(env), cwd, log_path, startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """PID of the process (also its process group id)."""
        if self._proc is None:
            raise HarnessError(f"{self.name}: not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None (also when never started)."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of the log file."""
        try:
            return tail(self.log_path.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return "(no log yet)"

    def check(self) -> None:
        """``HarnessError`` with the log's end if the process has exited."""
        code = self.exit_code()
        if code is not None:
            raise HarnessError(f"{self.name} exited with code {code} (log {self.log_path}):\n{self.log_tail()}")

    def spawn(self) -> None:
        """Start the process and return at once (see ``wait_healthy``)."""
        if self.running:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def healthy(self) -> bool:
        """One health probe (true at once without a ``url``); ``HarnessError`` when the process has exited."""
        self.check()
        if self.url is None:
            return True
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Block until healthy; ``HarnessError`` with the log's end on exit or after ``timeout`` s (default: the
        start-up timeout)."""
        limit = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self.healthy():
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{self.name} did not answer GET {self.url}/health with 200 within {limit:.0f} s "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def start(self) -> Self:
        """Spawn and wait until healthy (the process is stopped again if that fails)."""
        self.spawn()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``timeout`` s, then SIGKILL to anything left in the group."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
        self._signal(signal.SIGKILL)  # children left in the group, if any
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the process group at once (as a crash would)."""
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        self._proc.wait()
        self._proc = None

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running(*servers: ServerProcess) -> Iterator[None]:
    """Spawn all ``servers`` at once (their start-ups overlap), wait until each is healthy, and stop them all on
    exit, the last first (list a server before the ones that call it)."""
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            server.wait_healthy()
        yield
    finally:
        for server in reversed(servers):
            server.stop()


# ---------------------------------------------------------------------------------------------------- tagloop


def tagloop_env(extra_env: Mapping[str, str] | None = None, *, inherit_settings: bool = True) -> dict[str, str]:
    """This process's environment (without its ``TAGLOOP_*`` variables unless ``inherit_settings``), offline,
    with ``extra_env`` on top."""
    inherited = {k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("TAGLOOP_")}
    return {**inherited, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(extra_env or {})}


class TagloopWorker(ServerProcess):
    """``python -m backend worker [--data-dir D]`` from the repo root (the scaled-out mode's separate worker),
    with ``extra_env`` on top of this process's environment."""

    def __init__(self, extra_env: Mapping[str, str] | None = None, *, log_path: Path, data_dir: Path | None = None):
        command = [sys.executable, "-m", "backend", "worker"]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        super().__init__("tagloop worker", command, env=tagloop_env(extra_env), cwd=REPO, log_path=log_path)


class TagloopServer(ServerProcess):
    """``python -m backend serve --host 127.0.0.1 --port P [--data-dir D]`` from the repo root, as ``make serve``
    starts it, with ``extra_env`` on top of this process's environment (or of it without its ``TAGLOOP_*``
    variables, ``inherit_settings=False``: tagloop's defaults)."""

    def __init__(
        self,
        extra_env: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        inherit_settings: bool = True,
        startup_timeout: float = 120.0,
    ) -> None:
        self.port = port or free_port()
        env = tagloop_env(extra_env, inherit_settings=inherit_settings)
        command = [sys.executable, "-m", "backend", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        if log_path is None:
            where = data_dir or (Path(env["TAGLOOP_DATA_DIR"]) if env.get("TAGLOOP_DATA_DIR") else None)
            log_path = (where or Path(tempfile.mkdtemp(prefix="tagloop-server-"))) / "tagloop.log"
        url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "tagloop", command, env=env, cwd=REPO, log_path=log_path, url=url, startup_timeout=startup_timeout
        )

    def call(self, method: str, path: str, *, json: Any = None, timeout: float = 60.0, **params: Any) -> Any:
        """One request to tagloop (``path`` from the root, e.g. ``/api/projects/3/status``); the answer's JSON.
        ``HarnessError`` naming the call and the answer unless it is 2xx."""
        response = httpx.request(method, f"{self.url}{path}", json=json, params=params or None, timeout=timeout)
        if not response.is_success:
            raise HarnessError(f"tagloop {method} {path}: got {response.status_code} {response.text[:300]!r}")
        return response.json() if response.content else None


# ----------------------------------------------------------------------------------------------- Label Studio


def ls_venv_path(setting: str) -> Path:
    """Label Studio's venv: ``setting`` (``TAGLOOP_LS_VENV``), else ``.ls-venv`` in the repo (as the Makefile
    has it)."""
    return Path(setting) if setting else REPO / ".ls-venv"


def ensure_label_studio(venv: Path, step: Step | None = None) -> Path:
    """``<venv>/bin/label-studio`` (absolute: servers start in their own directory), after creating ``venv`` and
    installing Label Studio there if it is absent."""
    venv = venv.absolute()
    executable = venv / "bin" / "label-studio"
    if executable.exists():
        return executable
    if step is not None:
        step(f"Installing Label Studio {LABEL_STUDIO_VERSION} into {venv} (about a minute, ~1 GB)")
    commands: list[Sequence[str]] = []
    if not (venv / "bin" / "python").exists():
        commands.append(["python3", "-m", "venv", str(venv)])
    commands.append([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"])
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise HarnessError(
                f"`{' '.join(cmd)}` exited {done.returncode}; expected 0:\n{tail(done.stdout + done.stderr)}"
            )
    if not executable.exists():
        raise HarnessError(f"installed label-studio=={LABEL_STUDIO_VERSION} but {executable} does not exist")
    return executable


@dataclass(frozen=True)
class Credentials:
    """Label Studio's admin user (created on its first start) and its legacy API token."""

    username: str
    password: str
    token: str

    @classmethod
    def generate(cls, username: str = "admin@example.com") -> Self:
        """New random credentials."""
        return cls(username, secrets.token_urlsafe(12), secrets.token_hex(20))

    @classmethod
    def load_or_create(cls, path: Path, username: str) -> tuple[Self, bool]:
        """Read ``path``, or write new random credentials there (mode 0600); (credentials, whether new)."""
        if path.exists():
            return cls(**json.loads(path.read_text())), False
        made = cls.generate(username)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(made)))
        path.chmod(0o600)
        return made, True


@dataclass(frozen=True)
class PostgresDatabase:
    """A database of Label Studio's own on a PostgreSQL server that trusts ``user`` (the machine's, by default)."""

    name: str
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.name):
            raise HarnessError(f"database name: got {self.name!r}, expected lower-case letters, digits and _")

    def _admin(self) -> Any:
        import psycopg

        url = f"postgresql://{self.user}@{self.host}:{self.port}/postgres"
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise HarnessError(f"PostgreSQL at {url} is not reachable ({exc}); `make services` starts it") from None

    def exists(self) -> bool:
        """Whether the database exists."""
        with self._admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone() is not None

    def create(self) -> bool:
        """Create the database if it is absent; whether it was created."""
        if self.exists():
            return False
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return True

    def drop(self) -> None:
        """Drop the database (closing its connections) if it exists."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def label_studio_env(self) -> dict[str, str]:
        """The variables that put Label Studio on this database."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": "",
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
        }


def label_studio_env(data_dir: Path, creds: Credentials, database: PostgresDatabase | None = None) -> dict[str, str]:
    """The environment of a headless Label Studio with its data in ``data_dir`` (and its database there on
    SQLite, or ``database``), ``creds`` as its first user, able to reach an ML backend on loopback."""
    own = {prefix + name for name in LS_OWN_VARIABLES for prefix in ("", "LABEL_STUDIO_", "HEARTEX_")}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=creds.username,
        LABEL_STUDIO_PASSWORD=creds.password,
        LABEL_STUDIO_USER_TOKEN=creds.token,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_ML_BLOCK_LOCAL_IP="false",
        LABEL_STUDIO_SSRF_PROTECTION_ENABLED="false",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_SENTRY_DSN="",
        LABEL_STUDIO_FRONTEND_SENTRY_DSN="",
    )
    env.update(database.label_studio_env() if database is not None else {"DJANGO_DB": "sqlite"})
    return env


class LabelStudioServer(ServerProcess):
    """``label-studio start`` headless on 127.0.0.1 with ``credentials`` (default: a new random admin), its data in
    ``data_dir``, on SQLite there or on ``database`` (which must exist)."""

    def __init__(
        self,
        executable: Path,
        data_dir: Path,
        *,
        port: int | None = None,
        credentials: Credentials | None = None,
        database: PostgresDatabase | None = None,
        startup_timeout: float = 240.0,
    ) -> None:
        self.port = port or free_port()
        self.data_dir, self.database = data_dir, database
        self.credentials = credentials or Credentials.generate()
        command = [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port)]
        env = label_studio_env(data_dir, self.credentials, database)
        super().__init__(
            "Label Studio",
            command,
            env=env,
            cwd=data_dir,
            log_path=data_dir / "label-studio.log",
            url=f"http://127.0.0.1:{self.port}",
            startup_timeout=startup_timeout,
        )

    @property
    def username(self) -> str:
        """The admin's e-mail (login name)."""
        return self.credentials.username

    @property
    def password(self) -> str:
        """The admin's password."""
        return self.credentials.password

    @property
    def token(self) -> str:
        """The admin's legacy API token."""
        return self.credentials.token

    def spawn(self) -> None:
        """Create the data dir, then start Label Studio."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().spawn()

    def client(self, *, max_retries: int | None = None) -> LabelStudio:
        """An SDK client authenticated with the admin's legacy token (``max_retries=0``: no retry of a 5xx, as
        the browser does not retry either)."""
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token, max_retries=max_retries)
