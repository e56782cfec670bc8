"""Alembic migrations (run programmatically by ``SqlStore.migrate``)."""
