"""Cached embeddings: float32 vectors by (body key, text hash)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select

from backend.store import models
from backend.store.db import Database

CHUNK = 500
_EMBEDDINGS = models.Base.metadata.tables["embeddings"]
_GET = select(_EMBEDDINGS.c.text_hash, _EMBEDDINGS.c.vector).where(  # built once: every uncached /predict text asks
    _EMBEDDINGS.c.body_key == bindparam("body_key"), _EMBEDDINGS.c.text_hash.in_(bindparam("hashes", expanding=True))
)


class EmbeddingRepository:
    """The ``embeddings`` table (what ``backend.models.embedding_cache.EmbeddingCache`` reads and writes)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, body_key: str, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Cached float32 vectors (raw bytes) by text hash, for the hashes present."""
        out: dict[str, bytes] = {}
        unique = list(dict.fromkeys(text_hashes))
        with self.db.reads() as r:
            for start in range(0, len(unique), CHUNK):
                rows = r.execute(_GET, {"body_key": body_key, "hashes": unique[start : start + CHUNK]})
                out.update({h: bytes(v) for h, v in rows})
        return out

    def put(self, batch: Mapping[Hashable, Mapping[Any, bytes]]) -> None:
        """Store vectors (body key → text hash → vector) in one transaction; existing ones are kept (the same text
        under the same body gives the same vector)."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        rows = [
            {"body_key": str(key), "text_hash": str(h), "vector": v}
            for key, vectors in batch.items()
            for h, v in vectors.items()
        ]
        if not rows:
            return
        with self.db.session() as s:
            for start in range(0, len(rows), 1000):
                s.execute(insert(models.Embedding).values(rows[start : start + 1000]).on_conflict_do_nothing())
