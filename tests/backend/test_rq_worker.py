"""Scaled-out dispatch: database jobs handed to `tagloop worker` through RQ on the machine's real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.config import Settings
from backend.services import Services, build_services
from backend.training.rq_worker import RQDispatcher, rq_job_id, run_worker
from tests.conftest import config_xml

pytestmark = pytest.mark.postgres


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A private Redis database index, flushed before and after."""
    import redis

    url = f"redis://127.0.0.1:6379/{1 + uuid.uuid4().int % 6}"
    conn = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); `make services` starts it")
    conn.flushdb()
    yield url
    conn.flushdb()


@pytest.fixture
def scaled(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Services]:
    """Web-side services in scaled-out mode (PostgreSQL store, RQ dispatch), with one project."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        worker="redis",
        redis_url=redis_url,
        worker_poll_s=0.2,
        job_backoff_s=0.05,
        catch_up_every_s=3600,
    )
    services = build_services(settings, worker=False)
    services.store.projects.upsert(7, config_xml("news_topics"), "h")
    yield services
    services.close()


def _queued_ids(services: Services) -> list[str]:
    dispatcher = services.waker
    assert isinstance(dispatcher, RQDispatcher)
    return list(dispatcher.queue.job_ids)


def test_a_burst_of_requests_is_one_database_job_and_one_rq_job(scaled: Services) -> None:
    assert [scaled.request_training(7, "catchup", f"label {i}") for i in range(5)] == ["queued"] + [
        "already_queued"
    ] * 4
    (job,) = scaled.jobs.active(7)
    assert _queued_ids(scaled) == [rq_job_id(job, scaled.settings.resolved_database_url)]


def test_worker_runs_the_job_through_the_shared_code_path(scaled: Services) -> None:
    scaled.request_training(7, "catchup", "test")
    run_worker(scaled, burst=True)
    job = scaled.jobs.latest(7, "catchup")
    assert job is not None and job.state == "done" and job.worker.endswith(":rq")
    assert (
        job.version == "no catch-up: no Label Studio URL/token"
    )  # what train_project answers for a catch-up without LS
    assert _queued_ids(scaled) == []


def test_a_job_of_a_busy_project_waits_and_is_dispatched_again(scaled: Services) -> None:
    running, _ = scaled.jobs.enqueue(7, "setfit", "slow")
    assert scaled.jobs.claim_id(running.id, "other-host:1:rq") is not None
    scaled.request_training(7, "catchup", "while busy")
    run_worker(scaled, burst=True)  # the RQ job runs, finds the project busy and leaves the job queued
    waiting = scaled.jobs.latest(7, "catchup")
    assert waiting is not None and waiting.state == "queued"
    assert _queued_ids(scaled) == []
    dispatcher = scaled.waker
    assert isinstance(dispatcher, RQDispatcher)
    scaled.jobs.finish(running.id, "7-setfit-1")
    assert dispatcher.dispatch_runnable() == 1  # the finished RQ job is replaced by a fresh one
    run_worker(scaled, burst=True)
    done = scaled.jobs.get(waiting.id)
    assert done is not None and done.state == "done"


def test_two_claims_of_one_project_cannot_both_run(scaled: Services) -> None:
    a, _ = scaled.jobs.enqueue(7, "setfit", "a")
    b, _ = scaled.jobs.enqueue(7, "fast", "b")
    assert scaled.jobs.claim_id(a.id, "w1") is not None
    assert scaled.jobs.claim_id(b.id, "w2") is None


def test_redis_down_loses_no_job(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "d", database_url=postgres_url, redis_url="redis://127.0.0.1:1/0")
    services = build_services(settings, worker=False)
    try:
        services.store.projects.upsert(7, config_xml("news_topics"), "h")
        assert services.request_training(7, "catchup", "redis is down") == "queued"
        (job,) = services.jobs.active(7)
        assert job.state == "queued"  # a worker's sweeper dispatches it when Redis is back
    finally:
        services.close()
