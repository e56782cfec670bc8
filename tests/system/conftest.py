"""Multi-process tests: tagloop web processes and workers on PostgreSQL and Redis (marked ``system``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here ``system`` and ``postgres``."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.system)
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def scaled_env(tmp_path: Path, postgres_url: str) -> Iterator[dict[str, str]]:
    """Environment of the scaled-out mode: PostgreSQL store, Redis wake-ups on a private DB index."""
    import redis

    index = 7 + uuid.uuid4().int % 8
    url = f"redis://127.0.0.1:6379/{index}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); `make services` starts it")
    yield {
        "TAGLOOP_DATABASE_URL": postgres_url,
        "TAGLOOP_WORKER": "redis",
        "TAGLOOP_REDIS_URL": url,
        "TAGLOOP_DATA_DIR": str(tmp_path / "shared-data"),
        "TAGLOOP_TRAIN_EVERY": "0",
        "TAGLOOP_MIN_LABELS_TO_TRAIN": "4",
        "TAGLOOP_JOB_STALE_S": "4",
        "TAGLOOP_WORKER_POLL_S": "0.5",
        "TAGLOOP_SETFIT_MAX_STEPS": "6",
        "TAGLOOP_JOB_BACKOFF_S": "0.5",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    redis.Redis.from_url(url).flushdb()
