"""The server side of ``tagloop bench predict``: a ``tagloop serve`` subprocess on a fresh data dir (with the
worker it supervises for ``setup=default``, plus a separate `tagloop worker` for ``setup=redis``), fresh task
ids, and /predict calls to it."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from tools.harness import HarnessError, TagloopServer, TagloopWorker

if TYPE_CHECKING:
    from tools.bench.predict import PredictBenchConfig

PROJECT = 1
"""The Label Studio project id the bench uses."""
SETUP_WORKER = {"default": "process", "inprocess": "inprocess", "redis": "redis"}
"""``--setup`` → the server's ``TAGLOOP_WORKER``."""


class Server:
    """A ``tagloop serve`` subprocess on a fresh data dir (plus a ``tagloop worker`` with ``setup=redis``), and a
    session to it."""

    def __init__(self, data_dir: Path, config: PredictBenchConfig) -> None:
        """Spawn ``tagloop serve`` (``wait_up`` waits for it; the worker starts in ``start_worker``)."""
        env = {
            "TAGLOOP_DATA_DIR": str(data_dir),
            "TAGLOOP_TRAIN_EVERY": "0",
            "TAGLOOP_FAST_TIER": "false",
            "TAGLOOP_SETFIT_MAX_STEPS": str(config.slow_steps),
            "TAGLOOP_PUSH_TOP_K": "0",
            "TAGLOOP_WORKER": SETUP_WORKER[config.setup],
            "TAGLOOP_REDIS_URL": config.redis_url,
            "TAGLOOP_TRAINING_PRIORITY": config.training_priority,
        }
        self.tagloop = TagloopServer(env, data_dir=data_dir, log_path=data_dir / "server.log")
        self.tagloop.spawn()
        self.url, self.log = str(self.tagloop.url), self.tagloop.log_path
        self.data_dir, self.config = data_dir, config
        self.worker: TagloopWorker | None = None
        self.session = requests.Session()
        self.last_app_ms: float | None = None
        """The server's own time of the last ``post`` or ``predict_http`` (see ``app_ms``)."""

    def start_worker(self) -> None:
        """With ``setup=redis``: empty the bench's Redis database, start a `tagloop worker` (after the server
        migrated the store)."""
        if self.config.setup != "redis":
            return
        import redis

        # a fresh store starts with an empty wake-up list and no presence keys of an earlier run
        redis.Redis.from_url(self.config.redis_url).flushdb()
        self.worker = TagloopWorker(self.tagloop.env, log_path=self.data_dir / "worker.log", data_dir=self.data_dir)
        self.worker.spawn()

    def check(self) -> None:
        """``HarnessError`` if the server or the worker exited."""
        for process in (self.tagloop, self.worker):
            if process is not None:
                process.check()

    def wait_up(self, timeout_s: float) -> None:
        """Block until the server answers /health (``HarnessError`` after ``timeout_s`` or if it exits)."""
        self.tagloop.wait_healthy(timeout_s)

    def post(self, path: str, body: Any, timeout: float = 600) -> Any:
        r = self.session.post(f"{self.url}{path}", json=body, timeout=timeout)
        self.last_app_ms = app_ms(r)
        if not r.ok:
            raise HarnessError(f"POST {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def status(self) -> dict[str, Any]:
        self.check()
        return dict(self.session.get(f"{self.url}/api/projects/{PROJECT}/status", timeout=60).json())

    def peak_rss_mb(self) -> float | None:
        """VmHWM (peak resident set size) of the web process, in MB."""
        return peak_rss_mb(self.tagloop.pid)

    def worker_peak_rss_mb(self) -> float | None:
        """VmHWM of the process that trains when it is not the web process: the supervised worker
        (``<data_dir>/worker.pid``) or the separate `tagloop worker`; None for ``setup=inprocess``."""
        if self.worker is not None:
            return peak_rss_mb(self.worker.pid)
        pid_file = self.data_dir / "worker.pid"
        if self.config.setup != "default" or not pid_file.exists():
            return None
        return peak_rss_mb(int(pid_file.read_text().split()[0]))

    def stop(self) -> None:
        """Stop the worker, then the server (SIGTERM to each process group, SIGKILL after 30 s)."""
        for process in (self.worker, self.tagloop):
            if process is not None:
                process.stop(30)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set size) of process ``pid`` in MB; None if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


class TaskIds:
    """Fresh task ids for /predict calls (each measured text is a new task)."""

    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        with self._lock:
            first, self._next = self._next, self._next + n
        return list(range(first, first + n))


def predict_http(server: Server, ids: TaskIds, texts: Sequence[str], session: requests.Session | None = None) -> Any:
    """One /predict call with ``texts`` as new tasks; the response JSON."""
    tasks: list[dict[str, Any]] = [
        {"id": i, "data": {"text": t}} for i, t in zip(ids.take(len(texts)), texts, strict=True)
    ]
    r = (session or server.session).post(
        f"{server.url}/predict", json={"project": PROJECT, "tasks": tasks}, timeout=120
    )
    server.last_app_ms = app_ms(r)
    if not r.ok:
        raise HarnessError(f"/predict: {r.status_code} {r.text[:300]}")
    return r.json()


def app_ms(response: requests.Response) -> float | None:
    """The time the server spent in the app on a request (its ``Server-Timing: app;dur=<ms>`` header): the rest of
    a latency is the HTTP server's queue, transport and the client."""
    found = re.search(r"\bapp;dur=([0-9.]+)", response.headers.get("Server-Timing", ""))
    return float(found.group(1)) if found else None
