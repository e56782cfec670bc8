"""Persistence: SQLAlchemy 2.0 models, Alembic migrations and the ``SqlStore`` facade."""

from backend.store.records import AnnotationRecord, Example, ModelVersionRecord, ProjectRecord
from backend.store.sql_store import SqlStore

__all__ = ["AnnotationRecord", "Example", "ModelVersionRecord", "ProjectRecord", "SqlStore"]
