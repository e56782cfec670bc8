"""``tagloop demo``: Label Studio and tagloop on loopback, a project with real data, uncertainty sampling on.

The demo owns two server processes, each in its own session (process group), so that stopping the demo
(Ctrl-C, SIGTERM, a failed ``--check``) signals every process they started and leaves none behind. State lives
in a work directory (``<data_dir>/demo``): Label Studio's data (its SQLite database is kept between runs, so a
restart takes seconds instead of a fresh migration), tagloop's data, the logs and the demo user's credentials.
Each run deletes the previous runs' demo projects and creates a new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Self

import httpx
from rich.console import Console

from backend.errors import TagloopError
from backend.training.worker import pid_alive

REPO = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO / "annotation_configs"
SHARED_DATA = REPO.parent / "shared" / "data"
LABEL_STUDIO_VERSION = "1.23.2"
DEMO_TITLE = "tagloop demo"
LS_DROPPED_ENV = ("HOST", "PORT", "USERNAME", "PASSWORD", "DEBUG")  # Label Studio reads these too
LOG_TAIL_LINES = 30
Step = Callable[[str], None]
"""Progress sink: called with a message when a step starts."""


class DemoError(TagloopError):
    """The demo could not start, set up its project, or failed its ``--check``."""

    code = "demo_failed"


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """What the demo starts and loads."""

    workdir: Path
    ls_venv: Path
    config: str = "news_topics"
    """A file name in ``annotation_configs/`` (without ``.xml``) or a path to a labeling config."""
    data: str = "ag_news"
    """A data set name in ``../shared/data`` or a path to a CSV with a ``text`` column."""
    n: int = 300
    ls_port: int | None = None
    port: int | None = None
    strategy: str = ""
    """tagloop query strategy of the project; empty means tagloop's default for the config (uncertainty)."""
    seed: int = 42
    tagloop_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment of the tagloop server (on top of this process's)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise DemoError(f"n: got {self.n}, expected an integer >= 1")
        for name in ("ls_port", "port"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 65535:
                raise DemoError(f"{name}: got {value}, expected a port in 1..65535")
        if self.ls_port is not None and self.ls_port == self.port:
            raise DemoError(f"ls_port and port: both are {self.port}, expected two different ports")


@dataclass(frozen=True)
class Credentials:
    """The demo user of Label Studio (created on its first start) and its legacy API token."""

    username: str
    password: str
    token: str

    @classmethod
    def load_or_create(cls, path: Path) -> Self:
        """Read ``path``, or write new random credentials there (mode 0600)."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls("demo@example.com", secrets.token_urlsafe(12), secrets.token_hex(20))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made.__dict__))
        path.chmod(0o600)
        return made


@dataclass(frozen=True)
class DemoProject:
    """The Label Studio project the demo created, and what tagloop serves for it."""

    id: int
    tasks: int
    model_version: str
    strategy: str
    queue: tuple[int, ...]
    """LS task ids in tagloop's queue order (first = the next task an annotator gets)."""


def ls_venv_path(setting: str) -> Path:
    """Label Studio's venv: the ``ls_venv`` setting, else ``.ls-venv`` in the repo (as the Makefile has it)."""
    return Path(setting) if setting else REPO / ".ls-venv"


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


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def ensure_label_studio(venv: Path, step: Step) -> Path:
    """``<venv>/bin/label-studio``, after creating ``venv`` and installing Label Studio there if it is absent."""
    executable = venv / "bin" / "label-studio"
    if executable.exists():
        return executable
    step(f"Installing Label Studio {LABEL_STUDIO_VERSION} into {venv} (about a minute, ~1 GB)")
    commands: list[Sequence[str]] = []
    if not (venv / "bin" / "python").exists():
        commands.append(["python3", "-m", "venv", str(venv)])
    commands.append([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"])
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DemoError(
                f"`{' '.join(cmd)}` exited {done.returncode}; expected 0:\n{_tail(done.stdout + done.stderr)}"
            )
    if not executable.exists():
        raise DemoError(f"installed label-studio=={LABEL_STUDIO_VERSION} but {executable} does not exist")
    return executable


class ServerProcess:
    """A server in its own session (process group), logging to a file, ready once ``GET /health`` answers 200."""

    def __init__(self, name: str, command: Sequence[str], *, url: str, env: Mapping[str, str], cwd: Path, log: Path):
        self.name, self.command, self.url = name, list(command), url
        self.env, self.cwd, self.log = dict(env), cwd, log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """PID of the server (also its process group id)."""
        if self._proc is None:
            raise DemoError(f"{self.name}: never started")
        return self._proc.pid

    def spawn(self) -> None:
        """Start the process; returns at once (see ``wait_healthy``)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self) -> str:
        """The end of the log file."""
        try:
            return _tail(self.log.read_text(errors="replace"))
        except FileNotFoundError:
            return "(no log yet)"

    def healthy(self) -> bool:
        """One health probe; raises ``DemoError`` when the process has exited."""
        code = self.exit_code()
        if code is not None:
            raise DemoError(f"{self.name} exited with code {code} (log {self.log}):\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float) -> None:
        """Block until ``GET /health`` answers 200; ``DemoError`` on exit or after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{self.name} did not answer GET {self.url}/health within {timeout:.0f} s "
                    f"(log {self.log}):\n{self.log_tail()}"
                )
            time.sleep(0.5)

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
        self._signal(signal.SIGKILL)
        self._proc = None

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid if self._proc else 0, sig)


def label_studio_env(data_dir: Path, creds: Credentials) -> dict[str, str]:
    """The environment of a headless Label Studio with its data in ``data_dir``, ``creds`` as its first user,
    able to reach an ML backend on loopback (also used by the end-to-end tests)."""
    env = {k: v for k, v in os.environ.items() if k not in LS_DROPPED_ENV}
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
    return env


def label_studio_process(executable: Path, data_dir: Path, port: int, creds: Credentials) -> ServerProcess:
    """``label-studio start`` headless on 127.0.0.1:``port``, able to reach an ML backend on loopback."""
    env = label_studio_env(data_dir, creds)
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return ServerProcess("Label Studio", command, url=url, env=env, cwd=data_dir, log=data_dir / "label-studio.log")


def tagloop_process(data_dir: Path, port: int, extra_env: Mapping[str, str]) -> ServerProcess:
    """``python -m backend serve`` on 127.0.0.1:``port`` with its data in ``data_dir``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra_env}
    command = [sys.executable, "-m", "backend", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    url = f"http://127.0.0.1:{port}"
    return ServerProcess("tagloop", command, url=url, env=env, cwd=REPO, log=data_dir / "tagloop.log")


def reset_tagloop_data(data_dir: Path) -> None:
    """Empty tagloop's data dir but for the ONNX export of the base body (minutes of work to redo).

    Label Studio's data is kept (a restart takes seconds instead of a fresh migration); tagloop's store is not:
    each run deletes the previous demo projects, and Label Studio on SQLite hands their task ids out again.
    """
    if not data_dir.exists():
        return
    for child in data_dir.iterdir():
        if child.name == "models" and child.is_dir():
            for model in child.iterdir():
                if model.name != "base-onnx":
                    shutil.rmtree(model)
        elif child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _pick_port(wanted: int | None, option: str) -> int:
    if wanted is None:
        return free_port()
    if not port_is_free(wanted):
        raise DemoError(f"{option}: port {wanted} on 127.0.0.1 is in use; expected a free port (or omit {option})")
    return wanted


def read_config(config: str) -> str:
    """Labeling config XML: ``annotation_configs/<config>.xml``, or the file at path ``config``."""
    path = CONFIGS_DIR / f"{config}.xml"
    if not path.exists():
        path = Path(config)
    if not path.is_file():
        known = sorted(p.stem for p in CONFIGS_DIR.glob("*.xml"))
        raise DemoError(f"config: got {config!r}, expected one of {known} or the path of an XML file")
    return path.read_text()


def read_texts(data: str, n: int, *, seed: int, shared_data: Path = SHARED_DATA) -> list[str]:
    """``n`` non-empty texts drawn at random (``seed``) from a data set name in ``shared_data`` or a CSV path."""
    path = shared_data / data / f"{data}.csv"
    if not path.exists():
        path = Path(data)
    if not path.is_file():
        known = sorted(p.parent.name for p in shared_data.glob("*/*.csv"))
        raise DemoError(f"data: got {data!r}, expected one of {known} (in {shared_data}) or the path of a CSV file")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "text" not in (reader.fieldnames or []):
            raise DemoError(f"data: {path} has columns {reader.fieldnames}; expected a 'text' column")
        texts = [row["text"] for row in reader if row["text"].strip()]
    return random.Random(seed).sample(texts, min(n, len(texts)))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that; ``DemoError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return value


class LabelStudioApi:
    """The Label Studio calls the demo makes, with the legacy token (``Authorization: Token``)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; ``DemoError`` naming the call and Label Studio's answer unless it is 2xx."""
        response = self.http.request(method, path, **kwargs)
        if not response.is_success:
            raise DemoError(f"Label Studio {method} {path}: got {response.status_code} {response.text[:300]!r}")
        return response.json() if response.content else None

    def delete_demo_projects(self) -> int:
        """Delete the projects earlier demo runs created; returns how many."""
        projects = self.call("GET", "/api/projects", params={"page_size": 1000})
        items = projects["results"] if isinstance(projects, dict) else projects
        old = [p["id"] for p in items if str(p.get("title", "")).startswith(DEMO_TITLE)]
        for pid in old:
            self.call("DELETE", f"/api/projects/{pid}")
        return len(old)


def create_project(
    ls: LabelStudioApi, tagloop_url: str, *, title: str, label_config: str, texts: Sequence[str], strategy: str = ""
) -> int:
    """A project with uncertainty sampling and pre-labeling on, tagloop connected, ``texts`` imported after
    connecting (tagloop learns its pool from the ``TASKS_CREATED`` webhook), and the project's tagloop strategy
    set, which ranks the pool and pushes the queue head to Label Studio. Returns the LS project id."""
    project = ls.call(
        "POST",
        "/api/projects",
        json={
            "title": title,
            "label_config": label_config,
            "sampling": "Uncertainty sampling",  # /next serves the lowest prediction score: tagloop's queue order
            "show_collab_predictions": True,  # pre-fill the labeling page with tagloop's prediction
        },
    )
    pid = int(project["id"])
    ls.call("POST", "/api/ml", json={"project": pid, "url": tagloop_url, "title": "tagloop", "is_interactive": False})
    for start in range(0, len(texts), 500):
        batch = [{"text": t} for t in texts[start : start + 500]]
        ls.call("POST", f"/api/projects/{pid}/import", json=batch)
    put = httpx.put(f"{tagloop_url}/api/projects/{pid}/strategy", json={"strategy": strategy or None}, timeout=30)
    if put.status_code != 200:
        raise DemoError(f"tagloop PUT /api/projects/{pid}/strategy: got {put.status_code} {put.text[:300]!r}")
    return pid


def wait_for_queue(ls: LabelStudioApi, tagloop_url: str, pid: int, *, timeout: float = 180.0) -> DemoProject:
    """Block until tagloop has pushed its ranking and Label Studio's project serves that version."""

    def pushed() -> DemoProject | None:
        queue = httpx.get(f"{tagloop_url}/api/projects/{pid}/queue", timeout=30).json()
        if not queue["tasks"] or ls.call("GET", f"/api/projects/{pid}")["model_version"] != queue["model_version"]:
            return None
        tasks = int(ls.call("GET", f"/api/projects/{pid}")["task_number"])
        return DemoProject(pid, tasks, queue["model_version"], queue["strategy"], tuple(queue["tasks"]))

    return wait_for(pushed, timeout, f"tagloop to rank project {pid} and push its queue to Label Studio", 1.0)


def check_project(ls: LabelStudioApi, project: DemoProject) -> dict[str, Any]:
    """Through Label Studio's API: the head of the queue carries tagloop's prediction at the served version,
    and ``/next`` serves it. Returns what was seen; ``DemoError`` naming the mismatch otherwise."""
    head = project.queue[0]
    task = ls.call("GET", f"/api/tasks/{head}")
    ours = [p for p in task.get("predictions") or [] if p.get("model_version") == project.model_version]
    if not ours:
        seen = [p.get("model_version") for p in task.get("predictions") or []]
        raise DemoError(f"task {head}: predictions of versions {seen}; expected one of {project.model_version!r}")
    choices = [c for item in ours[0]["result"] for c in item["value"].get("choices", [])]
    served = ls.call("GET", f"/api/projects/{project.id}/next")
    if served.get("id") != head:
        raise DemoError(f"/next served task {served.get('id')}; expected tagloop's top-ranked task {head}")
    return {"task": head, "model_version": project.model_version, "choices": choices, "score": ours[0]["score"]}


class Demo:
    """Both servers and the project, as a context manager that always stops both servers on exit."""

    def __init__(self, config: DemoConfig, step: Step) -> None:
        self.config, self.step = config, step
        self.label_config = read_config(config.config)  # bad names fail before anything starts
        self.texts = read_texts(config.data, config.n, seed=config.seed)
        self.creds = Credentials.load_or_create(config.workdir / "credentials.json")
        self.servers: list[ServerProcess] = []

    def __enter__(self) -> Self:
        """Claim the work directory (one demo per directory: it replaces the previous run's state)."""
        lock = self.config.workdir / "demo.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            other = int(lock.read_text())
            if other != os.getpid() and pid_alive(other):
                raise DemoError(f"another tagloop demo (pid {other}) uses {self.config.workdir}; stop it first")
        lock.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        (self.config.workdir / "demo.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop both servers (tagloop first: it may be calling Label Studio), by process group."""
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def start(self) -> tuple[ServerProcess, ServerProcess]:
        """Install Label Studio if needed, then start both servers at once and wait until both are healthy."""
        executable = ensure_label_studio(self.config.ls_venv, self.step)
        ls_port = _pick_port(self.config.ls_port, "--ls-port")
        port = _pick_port(self.config.port, "--port")
        work = self.config.workdir
        reset_tagloop_data(work / "tagloop")
        ls = label_studio_process(executable, work / "label-studio", ls_port, self.creds)
        tagloop = tagloop_process(work / "tagloop", port, self.config.tagloop_env)
        self.step(f"Starting Label Studio on {ls.url} and tagloop on {tagloop.url}")
        for server in (ls, tagloop):
            server.spawn()
            self.servers.append(server)
        tagloop.wait_healthy(120)
        ls.wait_healthy(240)
        return ls, tagloop

    def set_up(self, ls_url: str, tagloop_url: str) -> tuple[LabelStudioApi, DemoProject]:
        """Replace earlier demo projects by a new one and wait until its queue is ranked."""
        cfg = self.config
        api = LabelStudioApi(ls_url, self.creds.token)
        api.delete_demo_projects()
        self.step(f"Creating a project: {cfg.config} with {len(self.texts)} tasks of {cfg.data}; connecting tagloop")
        title = f"{DEMO_TITLE}: {Path(cfg.config).stem} × {Path(cfg.data).stem}"
        pid = create_project(
            api, tagloop_url, title=title, label_config=self.label_config, texts=self.texts, strategy=cfg.strategy
        )
        self.step("tagloop ranks the tasks (uncertainty sampling) and pushes the queue to Label Studio")
        return api, wait_for_queue(api, tagloop_url, pid)

    def watch(self) -> None:
        """Block until a server exits (``DemoError``) or the demo is interrupted (Ctrl-C or SIGTERM)."""
        while True:
            for server in self.servers:
                code = server.exit_code()
                if code is not None:
                    raise DemoError(f"{server.name} exited with code {code} (log {server.log}):\n{server.log_tail()}")
            time.sleep(1.0)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt``, so clean-up runs (SIGINT too,
    since a shell starts background jobs with SIGINT ignored)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class RichSteps:
    """Progress on a rich console: a spinner on the running step, a check mark and its seconds once done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status = console.status("")
        self._current: tuple[str, float] | None = None

    def __call__(self, message: str) -> None:
        self.done()
        self._current = (message, time.monotonic())
        self._status.update(f"{message} …")
        self._status.start()

    def done(self) -> None:
        """Close the running step, if any."""
        if self._current is not None:
            message, started = self._current
            self._status.stop()
            self.console.print(f"[green]✓[/green] {message} ({time.monotonic() - started:.1f} s)")
            self._current = None


def summary_lines(demo: Demo, ls: ServerProcess, tagloop: ServerProcess, project: DemoProject) -> list[str]:
    """What the user needs to start labeling, and where everything is."""
    return [
        f"Label Studio  {ls.url}/projects/{project.id}/data",
        f"user          {demo.creds.username}",
        f"password      {demo.creds.password}",
        f"tagloop       {tagloop.url}  (version {project.model_version}, strategy {project.strategy}; "
        f"status: {tagloop.url}/api/projects/{project.id}/status)",
        f"project       {project.id}: {project.tasks} tasks, queue head task {project.queue[0]}",
        f"processes     Label Studio pid {ls.pid}, tagloop pid {tagloop.pid}; logs {ls.log}, {tagloop.log}",
    ]


def run_demo(config: DemoConfig, *, check: bool, console: Console) -> int:
    """Start everything, print the URL and credentials, then either verify and stop (``check``) or serve until
    Ctrl-C/SIGTERM. Returns the exit code: 0, 1 on a failure (the reason printed), 130 when interrupted."""
    started = time.monotonic()
    steps = RichSteps(console)
    try:
        with sigterm_as_interrupt(), Demo(config, steps) as demo:
            ls, tagloop = demo.start()
            api, project = demo.set_up(ls.url, tagloop.url)
            steps.done()
            ready = time.monotonic() - started
            console.print(f"[bold]tagloop demo ready in {ready:.1f} s[/bold]")
            for line in summary_lines(demo, ls, tagloop, project):
                console.print(line, highlight=False)
            if not check:
                console.print("Press Ctrl-C to stop Label Studio and tagloop.")
                demo.watch()
            seen = check_project(api, project)
    except DemoError as exc:
        steps.done()
        console.print(f"[red]error:[/red] {exc.reason}", highlight=False)
        return 1
    except KeyboardInterrupt:
        steps.done()
        console.print("stopped Label Studio and tagloop")
        return 130
    console.print(
        f"check passed: task {seen['task']} carries tagloop's prediction {seen['choices']} "
        f"(version {seen['model_version']}, score {seen['score']}) and /next serves it first; both servers stopped"
    )
    console.print(json.dumps({"check": "ok", "ready_seconds": round(ready, 1), **seen}))
    return 0
