"""``tagloop serve`` as ``make serve`` starts it: a web process that supervises one worker process.

A ``kill -9`` of the worker mid-training: the web process restarts it, the job is requeued and finishes, and not
one prediction fails meanwhile. Ctrl-C (SIGINT) of the server leaves no process behind.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.jobs.worker import pid_alive
from tests.conftest import config_xml, read_rows
from tools.harness import TagloopServer, wait_until
from tools.webhooks import annotation_event

NEWS = config_xml("news_topics")
SETTINGS = {
    "TAGLOOP_SERVE_PRECISION": "torch",  # no ONNX export: this test is about processes
    "TAGLOOP_TRAIN_EVERY": "0",
    "TAGLOOP_SETFIT_MAX_STEPS": "12",
    "TAGLOOP_SLOW_TIER_BUDGET_S": "0",
    "TAGLOOP_TRAINING_PRIORITY": "normal",  # the test's predictions must not starve the training it waits for
    "TAGLOOP_TRAINING_YIELD_MS": "0",
    "TAGLOOP_JOB_BACKOFF_S": "0.5",
    "TAGLOOP_WORKER_POLL_S": "0.5",
}


def _worker_pid(data: Path, other_than: int | None = None) -> int | None:
    try:
        pid = int((data / "worker.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid != other_than and pid_alive(pid) else None


def _label(server: TagloopServer, n: int) -> None:
    server.call("POST", "/setup", json={"project": "1.1700000000", "schema": NEWS})
    for i, row in enumerate(read_rows("ag_news", n), start=1):
        event = annotation_event(1, i, row["text"], [row["label"]], control="topic")
        server.call("POST", "/webhook", json=event)


def _job(server: TagloopServer, kind: str) -> dict[str, Any] | None:
    return server.call("GET", "/api/projects/1/status")["training"].get(kind)


def test_a_killed_worker_is_restarted_its_job_requeued_and_no_prediction_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = TagloopServer(SETTINGS, data_dir=data, inherit_settings=False, startup_timeout=180)
    with server:
        first = wait_until(lambda: _worker_pid(data), 60, what="the supervised worker to start")
        _label(server, 16)
        server.call("POST", "/api/projects/1/train", tier="setfit")
        wait_until(lambda: (_job(server, "setfit") or {}).get("state") == "running", 120, what="SetFit to start")
        failures: list[str] = []
        served = 0
        stop = threading.Event()

        def predict() -> None:
            nonlocal served
            body = {"project": "1.1700000000", "tasks": [{"data": {"text": "Stocks rallied after the report."}}]}
            while not stop.is_set():
                try:
                    r = httpx.post(f"{server.url}/predict", json=body, timeout=10)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:100]}")
                    served += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.1)

        caller = threading.Thread(target=predict, daemon=True)
        caller.start()
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: _worker_pid(data, other_than=first), 60, what="the worker to be restarted")
        job = wait_until(
            lambda: (j := _job(server, "setfit")) is not None and j["state"] == "done" and j,
            300,
            what="the requeued SetFit job to finish",
        )
        stop.set()
        caller.join(timeout=15)
        assert second != first and not pid_alive(first)
        assert job["attempts"] == 1 and "gone" in job["error"]  # requeued once: its worker died
        assert job["result"]["version"] == "1-setfit-1"
        assert failures == [] and served > 20


def test_ctrl_c_of_serve_leaves_no_process_behind(tmp_path: Path) -> None:
    """Also: CPU lists pin the web process and its worker to disjoint CPUs (the worker, started by the pinned web
    process, gets the CPUs the web process planned for it)."""
    data = tmp_path / "data"
    cpus = sorted(os.sched_getaffinity(0))
    pinned = {"TAGLOOP_SERVE_CPUS": str(cpus[0]), "TAGLOOP_TRAIN_CPUS": str(cpus[-1])} if len(cpus) > 1 else {}
    server = TagloopServer(SETTINGS | pinned, data_dir=data, inherit_settings=False, startup_timeout=180)
    server.start()
    try:
        worker = wait_until(lambda: _worker_pid(data), 60, what="the supervised worker to start")
        if pinned:
            assert os.sched_getaffinity(server.pid) == {cpus[0]}
            wait_until(lambda: os.sched_getaffinity(worker) == {cpus[-1]}, 90, what="the worker pinned to its CPU")
        os.kill(server.pid, signal.SIGINT)  # what Ctrl-C of `make serve` sends
        wait_until(lambda: server.exit_code() is not None, 30, what="tagloop serve to exit")
        wait_until(lambda: not pid_alive(worker), 30, what="the worker to exit")
        assert server.exit_code() == 0
        assert not (data / "worker.pid").exists()
    finally:
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_of_serve_stops_its_worker_too(tmp_path: Path, sig: signal.Signals) -> None:
    data = tmp_path / "data"
    server = TagloopServer(SETTINGS, data_dir=data, inherit_settings=False, startup_timeout=180)
    server.start()
    try:
        worker = wait_until(lambda: _worker_pid(data), 60, what="the supervised worker to start")
        os.kill(server.pid, sig)
        wait_until(lambda: server.exit_code() is not None and not pid_alive(worker), 30, what="both to exit")
    finally:
        server.stop()
