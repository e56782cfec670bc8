"""Embeddings cached in the store, keyed by (body, text hash): a text is encoded once per body."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from backend.models.encoder import Encoder
from backend.store.sql_store import SqlStore


def text_key(text: str) -> str:
    """sha256 of a text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def body_key(source: str) -> str:
    """Short stable key of a body (its directory)."""
    return hashlib.sha256(source.encode()).hexdigest()[:32]


class EmbeddingCache:
    """Encode through the store: cached vectors are read, missing ones encoded and written.

    ``write`` stores new vectors (body key, text hash → float32 bytes); default ``store.embeddings.put``. The
    serving path passes a ``write_behind.WriteBehind`` so a request does not wait for the commit.
    """

    def __init__(self, store: SqlStore, *, write: Callable[[str, dict[str, bytes]], None] | None = None) -> None:
        self.store = store
        self.write = write or (lambda key, vectors: store.embeddings.put({key: vectors}))

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, row i for texts[i]."""
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        key = body_key(encoder.source)
        hashes = [text_key(t) for t in texts]
        found = self.store.embeddings.get(key, hashes)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in found}
        if missing:
            fresh = encoder.encode(list(missing.values()))
            new = {h: fresh[i].astype(np.float32).tobytes() for i, h in enumerate(missing)}
            self.write(key, new)
            found.update(new)
        return np.stack([np.frombuffer(found[h], dtype=np.float32) for h in hashes])
