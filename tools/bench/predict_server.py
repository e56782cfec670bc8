"""The server side of ``tagloop bench predict``: a ``tagloop serve`` subprocess (plus a `tagloop worker` with
``worker=redis``) on a fresh data dir, fresh task ids, and /predict calls to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from tools.bench.predict import PredictBenchConfig

PROJECT = 1
"""The Label Studio project id the bench uses."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``tagloop serve`` subprocess on a fresh data dir, and a session to it."""

    def __init__(self, data_dir: Path, config: PredictBenchConfig) -> None:
        """Start ``tagloop serve`` (the worker, with ``worker=redis``, starts after ``wait_up``)."""
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "TAGLOOP_DATA_DIR": str(data_dir),
            "TAGLOOP_TRAIN_EVERY": "0",
            "TAGLOOP_FAST_TIER": "false",
            "TAGLOOP_SETFIT_MAX_STEPS": str(config.slow_steps),
            "TAGLOOP_PUSH_TOP_K": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TAGLOOP_WORKER": config.worker,
            "TAGLOOP_REDIS_URL": config.redis_url,
            "TAGLOOP_TRAINING_PRIORITY": config.training_priority,
        }
        self.log = data_dir / "server.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.env, self.data_dir, self.config = env, data_dir, config
        self.worker: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()

    def start_worker(self) -> None:
        """With ``worker=redis``: empty the bench's Redis database, start a `tagloop worker` (after the server
        migrated the store)."""
        if self.config.worker != "redis":
            return
        import redis

        # RQ job ids are the store's job ids: a fresh store must not meet jobs of an earlier run in Redis
        redis.Redis.from_url(self.config.redis_url).flushdb()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker"],
            env=self.env,
            stdout=(self.data_dir / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        """Raise if the server or the worker exited."""
        for name, proc, log in (("serve", self.proc, "server.log"), ("worker", self.worker, "worker.log")):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"tagloop {name} exited with {proc.returncode}; see {self.data_dir / log}")

    def wait_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check()
            try:
                if self.session.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"tagloop serve did not answer /health in {timeout_s} s; see {self.log}")

    def post(self, path: str, body: Any, timeout: float = 600) -> Any:
        r = self.session.post(f"{self.url}{path}", json=body, timeout=timeout)
        if not r.ok:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def status(self) -> dict[str, Any]:
        self.check()
        return dict(self.session.get(f"{self.url}/api/projects/{PROJECT}/status", timeout=60).json())

    def peak_rss_mb(self) -> float:
        """VmHWM (peak resident set size) of the web process, in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def stop(self) -> None:
        for proc in (self.proc, self.worker):
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


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
    if not r.ok:
        raise RuntimeError(f"/predict: {r.status_code} {r.text[:300]}")
    return r.json()
