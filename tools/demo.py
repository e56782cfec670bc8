"""``tagloop demo``: Label Studio and tagloop on loopback, a project with real data, uncertainty sampling on.

The demo owns two server processes (``tools.harness``), each in its own session (process group), so that stopping
the demo (Ctrl-C, SIGTERM, a failed ``--check``) signals every process they started and leaves none behind. State
lives in a work directory (``<data_dir>/demo``): Label Studio's data (its SQLite database, or with
``ls_database="postgresql"`` its database ``tagloop_demo_ls`` on the local PostgreSQL server, is kept between runs,
so a restart takes seconds instead of a fresh migration), tagloop's data, the logs and the demo user's
credentials. Each run deletes the previous runs' demo projects and creates a new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from rich.console import Console

from backend.errors import TagloopError
from backend.jobs.worker import pid_alive
from tools.harness import (
    LS_DATABASES,
    REPO,
    Credentials,
    LabelStudioServer,
    LsDatabase,
    PostgresDatabase,
    ServerProcess,
    Step,
    TagloopServer,
    ensure_label_studio,
    pick_port,
    running,
)
from tools.labelstudio_project import (
    RankedProject,
    delete_projects,
    ls_request,
    read_config,
    set_up_project,
    wait_for_queue,
)

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_TITLE = "tagloop demo"
DEMO_USER = "demo@example.com"
DEMO_LS_DATABASE = "tagloop_demo_ls"
"""Label Studio's database on the local PostgreSQL server with ``ls_database="postgresql"``."""


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
    ls_database: LsDatabase = "sqlite"
    """Label Studio's database: SQLite in the work dir, or ``ls_database_name`` on the local PostgreSQL server."""
    ls_database_name: str = DEMO_LS_DATABASE
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
        if self.ls_database not in LS_DATABASES:
            raise DemoError(f"ls_database: got {self.ls_database!r}, expected one of {list(LS_DATABASES)}")


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


def check_project(client: LabelStudio, project: RankedProject) -> dict[str, Any]:
    """Through Label Studio's API: the head of the queue carries tagloop's prediction at the served version,
    and ``/next`` serves it. Returns what was seen; ``DemoError`` naming the mismatch otherwise."""
    head = project.queue[0]
    predictions = [p.model_dump() for p in client.tasks.get(id=str(head)).predictions or []]
    ours = [p for p in predictions if p.get("model_version") == project.model_version]
    if not ours:
        seen = [p.get("model_version") for p in predictions]
        raise DemoError(f"task {head}: predictions of versions {seen}; expected one of {project.model_version!r}")
    choices = [c for item in ours[0]["result"] for c in item["value"].get("choices", [])]
    served = ls_request(client, "GET", f"/api/projects/{project.id}/next/")
    if not served.is_success:
        raise DemoError(f"Label Studio GET /api/projects/{project.id}/next/: got {served.status_code}")
    if served.json().get("id") != head:
        raise DemoError(f"/next served task {served.json().get('id')}; expected tagloop's top-ranked task {head}")
    return {"task": head, "model_version": project.model_version, "choices": choices, "score": ours[0]["score"]}


class Demo:
    """Both servers and the project, as a context manager that always stops both servers on exit."""

    def __init__(self, config: DemoConfig, step: Step) -> None:
        self.config, self.step = config, step
        self.label_config = read_config(config.config)  # bad names fail before anything starts
        self.texts = read_texts(config.data, config.n, seed=config.seed)
        self.creds, self.new_creds = Credentials.load_or_create(config.workdir / "credentials.json", DEMO_USER)
        self.servers: tuple[ServerProcess, ...] = ()
        self._stack = contextlib.ExitStack()

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
        self._stack.close()  # stops both servers, tagloop first (it may be calling Label Studio)
        (self.config.workdir / "demo.pid").unlink(missing_ok=True)

    def start(self) -> tuple[LabelStudioServer, TagloopServer]:
        """Install Label Studio if needed, then start both servers at once and wait until both are healthy."""
        executable = ensure_label_studio(self.config.ls_venv, self.step)
        ls_port = pick_port(self.config.ls_port, "--ls-port")
        port = pick_port(self.config.port, "--port")
        work = self.config.workdir
        reset_tagloop_data(work / "tagloop")
        ls = LabelStudioServer(
            executable, work / "label-studio", port=ls_port, credentials=self.creds, database=self.ls_database()
        )
        tagloop = TagloopServer(self.config.tagloop_env, data_dir=work / "tagloop", port=port)
        self.step(f"Starting Label Studio on {ls.url} ({self.config.ls_database}) and tagloop on {tagloop.url}")
        self.servers = (ls, tagloop)
        self._stack.enter_context(running(ls, tagloop))
        return ls, tagloop

    def ls_database(self) -> PostgresDatabase | None:
        """None (SQLite), or the PostgreSQL database, created if absent; created afresh the first time this work
        dir uses it, since Label Studio creates the demo user with these credentials only in an empty database."""
        if self.config.ls_database == "sqlite":
            return None
        database = PostgresDatabase(self.config.ls_database_name)
        marker = self.config.workdir / "label-studio" / "postgresql-database"
        if self.new_creds or not marker.exists() or marker.read_text() != database.name:
            database.drop()
        database.create()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(database.name)
        return database

    def set_up(self, ls: LabelStudioServer, tagloop: TagloopServer) -> tuple[LabelStudio, RankedProject]:
        """Replace earlier demo projects by a new one and wait until its queue is ranked."""
        cfg = self.config
        client = ls.client()
        delete_projects(client, DEMO_TITLE)
        self.step(f"Creating a project: {cfg.config} with {len(self.texts)} tasks of {cfg.data}; connecting tagloop")
        title = f"{DEMO_TITLE}: {Path(cfg.config).stem} × {Path(cfg.data).stem}"
        data = [{"text": t} for t in self.texts]
        pid, _ = set_up_project(
            client, tagloop, title=title, label_config=self.label_config, data=data, strategy=cfg.strategy
        )
        self.step("tagloop ranks the tasks (uncertainty sampling) and pushes the queue to Label Studio")
        return client, wait_for_queue(client, tagloop, pid)

    def watch(self) -> None:
        """Block until a server exits (``HarnessError``) or the demo is interrupted (Ctrl-C or SIGTERM)."""
        while True:
            for server in self.servers:
                server.check()
            time.sleep(1.0)


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


def summary_lines(demo: Demo, ls: ServerProcess, tagloop: ServerProcess, project: RankedProject) -> list[str]:
    """What the user needs to start labeling, and where everything is."""
    return [
        f"Label Studio  {ls.url}/projects/{project.id}/data",
        f"user          {demo.creds.username}",
        f"password      {demo.creds.password}",
        f"tagloop       {tagloop.url}  (version {project.model_version}, strategy {project.strategy}; "
        f"status: {tagloop.url}/api/projects/{project.id}/status)",
        f"project       {project.id}: {project.tasks} tasks, queue head task {project.queue[0]}",
        f"processes     Label Studio pid {ls.pid}, tagloop pid {tagloop.pid}; logs {ls.log_path}, {tagloop.log_path}",
    ]


def run_demo(config: DemoConfig, *, check: bool, console: Console) -> int:
    """Start everything, print the URL and credentials, then either verify and stop (``check``) or serve until
    Ctrl-C/SIGTERM. Returns the exit code: 0, 1 on a failure (the reason printed), 130 when interrupted."""
    from label_studio_sdk.core.api_error import ApiError

    from backend.runtime import signals_as_interrupt

    started = time.monotonic()
    steps = RichSteps(console)
    try:
        with signals_as_interrupt(), Demo(config, steps) as demo:
            ls, tagloop = demo.start()
            client, project = demo.set_up(ls, tagloop)
            steps.done()
            ready = time.monotonic() - started
            console.print(f"[bold]tagloop demo ready in {ready:.1f} s[/bold]")
            for line in summary_lines(demo, ls, tagloop, project):
                console.print(line, highlight=False)
            if not check:
                console.print("Press Ctrl-C to stop Label Studio and tagloop.")
                demo.watch()
            seen = check_project(client, project)
    except (TagloopError, ApiError) as exc:
        steps.done()
        reason = exc.reason if isinstance(exc, TagloopError) else f"Label Studio answered {exc.status_code}: {exc.body}"
        console.print(f"[red]error:[/red] {reason}", highlight=False)
        return 1
    except KeyboardInterrupt:
        steps.done()
        console.print("stopped Label Studio and tagloop")
        return 130
    console.print(
        f"check passed: task {seen['task']} carries tagloop's prediction {seen['choices']} "
        f"(version {seen['model_version']}, score {seen['score']}) and /next serves it first; both servers stopped"
    )
    summary = {"check": "ok", "ready_seconds": round(ready, 1), "ls_database": config.ls_database, **seen}
    console.print(json.dumps(summary))
    return 0
