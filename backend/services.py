"""The ``Services`` container: everything a request or a job needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from backend.config import Settings
from backend.models.embedding_cache import EmbeddingCache
from backend.models.encoder import Encoder
from backend.models.registry import ModelRegistry
from backend.store.sql_store import SqlStore
from backend.training.runner import TrainingRunner


@dataclass
class Services:
    """Settings, store, served models and the background trainer of one process."""

    settings: Settings
    store: SqlStore
    models: ModelRegistry
    trainer: TrainingRunner
    embeddings: EmbeddingCache

    def close(self) -> None:
        """Stop the trainer and release the database."""
        self.trainer.stop()
        self.store.close()


def build_services(settings: Settings, *, base_encoder: Encoder | None = None) -> Services:
    """Open (and migrate) the store, and wire the registry and the trainer.

    ``base_encoder`` lets several apps in one process (tests) share one loaded body.
    """
    from backend.training.jobs import train_project

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.resolved_database_url)
    store.migrate()
    models = ModelRegistry(settings, store, base=base_encoder)
    holder: list[Services] = []
    trainer = TrainingRunner(lambda project_id, tier: train_project(holder[0], project_id, tier))
    services = Services(
        settings=settings, store=store, models=models, trainer=trainer, embeddings=EmbeddingCache(store)
    )
    holder.append(services)
    return services


def get_services() -> Services:
    """The services of the current Flask app."""
    services: Services = current_app.extensions["tagloop"]
    return services
