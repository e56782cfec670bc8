"""``SqlStore``: tagloop's database and one repository per aggregate.

``store.projects``, ``store.tasks``, ``store.annotations``, ``store.versions``, ``store.embeddings`` and
``store.review`` each own their tables; every method runs in the current unit of work
(``store.unit_of_work()``), or in a short transaction of its own outside one (``backend.store.db``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.store.annotations import AnnotationRepository
from backend.store.db import Database
from backend.store.embeddings import EmbeddingRepository
from backend.store.projects import ProjectRepository
from backend.store.review import ReviewRepository
from backend.store.tasks import TaskRepository
from backend.store.versions import VersionRepository


class SqlStore:
    """Projects, tasks, annotations, model versions, embeddings and review queues on SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = Database(url)
        self.projects = ProjectRepository(self.db)
        self.tasks = TaskRepository(self.db)
        self.annotations = AnnotationRepository(self.db)
        self.versions = VersionRepository(self.db)
        self.embeddings = EmbeddingRepository(self.db)
        self.review = ReviewRepository(self.db)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine."""
        return self.db.engine

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        self.db.migrate()

    def close(self) -> None:
        """Release pooled connections."""
        self.db.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction for everything the repositories do inside the block (see ``backend.store.db``)."""
        with self.db.unit_of_work() as session:
            yield session

    def session(self) -> AbstractContextManager[Session]:
        """The current unit of work's session, or a transaction of its own."""
        return self.db.session()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current unit of work commits (now, if there is none)."""
        self.db.after_commit(callback)
