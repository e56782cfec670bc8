"""Persistence: every table in ``models``, one repository per aggregate, Alembic migrations, ``SqlStore``."""

from backend.store.records import AnnotationRecord, Example, ModelVersionRecord, ProjectRecord
from backend.store.sql_store import SqlStore

__all__ = ["AnnotationRecord", "Example", "ModelVersionRecord", "ProjectRecord", "SqlStore"]
