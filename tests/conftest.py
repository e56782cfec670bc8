"""Shared fixtures: real data slices, one real model per session, settings → services → app → client."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from backend.config import Settings
from backend.models.encoder import Encoder, bundled_model_path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "annotation_configs"
SHARED_DATA = Path(os.environ.get("TAGLOOP_SHARED_DATA", REPO.parent / "shared" / "data"))
POSTGRES_ADMIN_URL = os.environ.get("TAGLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def config_xml(name: str) -> str:
    """Text of ``annotation_configs/<name>.xml``."""
    return (CONFIGS / f"{name}.xml").read_text()


def read_rows(dataset: str, n: int, *, offset: int = 0) -> list[dict[str, str]]:
    """``n`` rows (text, label, ...) of ``../shared/data/<dataset>``; skips the test if the data is absent."""
    path = SHARED_DATA / dataset / f"{dataset}.csv"
    if not path.exists():
        pytest.skip(f"shared data set {path} is absent (tests read ../shared/data beside the repo)")
    with path.open(newline="", encoding="utf-8") as f:
        rows = []
        for i, row in enumerate(csv.DictReader(f)):
            if i >= offset:
                rows.append(row)
            if len(rows) >= n:
                break
    return rows


def split_labels(label: str) -> list[str]:
    """Multi-label cell → label list (empty string means none)."""
    return [x for x in label.split("|") if x]


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 body, loaded once for the whole session."""
    return Encoder.load(bundled_model_path(), max_seq_length=128, batch_size=32)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fast-training settings on a fresh SQLite data dir."""
    return Settings(
        data_dir=tmp_path / "data",
        setfit_max_steps=4,
        setfit_num_iterations=5,
        setfit_batch_size=8,
        train_every=0,
        fast_tier=False,
        promotion_tolerance=1.0,
        job_max_attempts=2,
        job_backoff_s=0.05,
        worker_poll_s=0.2,
        serve_precision="torch",
        worker="inprocess",
    )


@pytest.fixture
def services(settings: Settings, encoder: Encoder) -> Iterator[object]:
    """Services sharing the session's loaded body."""
    from backend.bootstrap import build

    built = build(settings, base_encoder=encoder)
    yield built
    built.close()


@pytest.fixture
def app(services: object) -> object:
    """The Flask app under test."""
    from backend.app import create_app

    return create_app(services=services)  # type: ignore[arg-type]


@pytest.fixture
def client(app: object) -> object:
    """Flask test client."""
    return app.test_client()  # type: ignore[attr-defined]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the machine's server, dropped afterwards."""
    import psycopg

    name = f"tagloop_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {admin} is not reachable ({exc}); `make services` starts it")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A migrated, empty store: SQLite under ``tmp_path``, and a fresh PostgreSQL database."""
    from backend.store import SqlStore

    url = (
        f"sqlite:///{tmp_path / 'db' / 'tagloop.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    built = SqlStore(url)
    built.migrate()
    yield built
    built.close()
