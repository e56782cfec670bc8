"""Workers on the database queue: lanes, wake-ups through the machine's real Redis, and no lost job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.bootstrap import build
from backend.config import Settings
from backend.jobs.kinds import Lane
from backend.jobs.wakeup import RedisWakeup, redis_key
from backend.runtime import run_worker
from backend.services import Services
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
def scaled_settings(tmp_path: Path, postgres_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        worker="redis",
        redis_url=redis_url,
        worker_poll_s=0.2,
        job_backoff_s=0.05,
        catch_up_every_s=3600,
    )


@pytest.fixture
def web(scaled_settings: Settings) -> Iterator[Services]:
    """Web-side services in scaled-out mode (PostgreSQL store, Redis wake-ups), with one project."""
    services = build(scaled_settings, role="web")
    services.store.projects.upsert(7, config_xml("news_topics"), "h")
    yield services
    services.close()


def test_a_burst_of_requests_is_one_job_and_wakes_the_workers(web: Services) -> None:
    import redis

    assert [web.request_job(7, "catchup", f"label {i}") for i in range(5)] == ["queued"] + ["already_queued"] * 4
    (job,) = web.jobs.active(7)
    assert job.kind == "catchup" and isinstance(web.wakeup, RedisWakeup)
    woken = redis.Redis.from_url(web.settings.redis_url).llen(redis_key(web.settings.resolved_database_url))
    assert 1 <= woken <= 5


def test_a_worker_process_runs_the_job_and_records_its_result(web: Services, scaled_settings: Settings) -> None:
    web.request_job(7, "catchup", "test")
    assert run_worker(scaled_settings, burst=True) == 0
    job = web.jobs.latest(7, "catchup")
    assert job is not None and job.state == "done" and job.worker.endswith(":worker-fast")
    assert job.result == {"skipped": "no Label Studio URL/token"}  # data, not a sentence


def test_a_slow_training_does_not_hold_up_the_fast_lane(web: Services) -> None:
    slow, _ = web.jobs.enqueue(7, "setfit", "10 labels")
    assert web.jobs.claim("w-slow", Lane.SLOW) is not None
    fast, _ = web.jobs.enqueue(7, "fast", "a label")
    push, _ = web.jobs.enqueue(7, "push", "new version")
    claimed = web.jobs.claim("w-fast", Lane.FAST)
    assert claimed is not None and claimed.id == fast.id  # the new label's version first, beside the slow one
    assert web.jobs.claim("w-fast-2", Lane.FAST) is None  # one job per (project, lane)
    web.jobs.enqueue(7, "transformer", "another slow one")
    assert web.jobs.claim("w-slow-2", Lane.SLOW) is None
    web.jobs.finish(claimed.id, {"version": "7-fast-1"})
    nxt = web.jobs.claim("w-fast", Lane.FAST)
    assert nxt is not None and nxt.id == push.id and web.jobs.get(claimed.id).version == "7-fast-1"
    assert slow.id != push.id


def test_two_claims_of_one_project_and_lane_cannot_both_run(web: Services) -> None:
    a, _ = web.jobs.enqueue(7, "setfit", "a")
    b, _ = web.jobs.enqueue(7, "transformer", "b")
    assert web.jobs.claim_id(a.id, "w1") is not None
    assert web.jobs.claim_id(b.id, "w2") is None


def test_redis_down_loses_no_job(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "d", database_url=postgres_url, worker="redis", redis_url="redis://127.0.0.1:1/0"
    )
    services = build(settings, role="web")
    try:
        services.store.projects.upsert(7, config_xml("news_topics"), "h")
        assert services.request_job(7, "catchup", "redis is down") == "queued"  # the wake-up only logs
        (job,) = services.jobs.active(7)
        assert job.state == "queued"  # a polling worker finds it
        assert run_worker(settings, burst=True) == 0
        assert services.jobs.get(job.id).state == "done"
    finally:
        services.close()
