"""The durable job queue on SQLite and PostgreSQL, and the worker that runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.jobs.kinds import Lane
from backend.jobs.queue import JobQueue
from backend.store import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobQueue]:
    url = f"sqlite:///{tmp_path / 'q.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = SqlStore(url)
    store.migrate()
    for pid in (1, 2):
        store.projects.upsert(pid, "<View/>", "h")
    yield JobQueue(store, max_attempts=2, backoff_s=0.05)
    store.close()


def test_enqueue_coalesces_and_claims_fast_first(queue: JobQueue) -> None:
    slow, created = queue.enqueue(1, "setfit", "10 labels")
    assert created and queue.enqueue(1, "setfit", "again") == (slow, False)
    fast, _ = queue.enqueue(1, "fast", "label")
    job = queue.claim("w1")
    assert job is not None and job.id == fast.id and job.state == "running" and job.worker == "w1"
    assert queue.claim("w2", Lane.FAST) is None  # one running job per project and lane
    other, _ = queue.enqueue(2, "fast", "x")
    assert queue.claim("w2", Lane.FAST).id == other.id  # another project may run meanwhile
    queue.finish(job.id, {"version": "1-fast-1", "status": "ready"})
    done = queue.get(job.id)
    assert (done.state, done.version, done.progress) == ("done", "1-fast-1", 1.0)
    assert done.result == {"version": "1-fast-1", "status": "ready"} and done.as_json()["tier"] == "fast"
    assert queue.enqueue(1, "fast", "next")[1]  # a new request after the old one ran


def test_failures_retry_with_backoff_then_give_up(queue: JobQueue) -> None:
    job, _ = queue.enqueue(1, "setfit", "x")
    first = queue.claim("w")
    retry = queue.fail(first.id, "RuntimeError: boom")
    assert retry.state == "queued" and retry.attempts == 1 and retry.run_after > time.time()
    assert queue.claim("w") is None  # still backing off
    time.sleep(0.08)
    second = queue.claim("w")
    assert second.id == job.id
    final = queue.fail(second.id, "RuntimeError: boom again")
    assert final.state == "failed" and final.attempts == 2 and "boom again" in final.error
    assert queue.active(1) == []


def test_stale_running_job_is_requeued(queue: JobQueue) -> None:
    queue.enqueue(1, "fast", "x")
    job = queue.claim("dead-worker")
    queue.heartbeat(job.id, progress=0.4, message="step 4/10")
    assert queue.get(job.id).progress == 0.4 and queue.get(job.id).message == "step 4/10"
    assert queue.recover_stale(timeout_s=60) == 0
    time.sleep(0.05)
    assert queue.recover_stale(timeout_s=0.01) == 1
    assert queue.get(job.id).state == "queued" and "heart-beating" in queue.get(job.id).error
