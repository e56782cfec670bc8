"""The one embedding cache: vectors in the store, keyed by (body key, text hash), so a text is encoded once per body.

The body key covers everything that changes a vector: the body (its directory), how it is served (torch, or an
ONNX export at a precision: part of a served body's ``source``) and ``max_seq_length`` (truncation). Serving,
training, pushes, review and ``tagloop simulate`` all go through ``ModelRegistry.embeddings``: reads in the caller's
thread, writes behind it (one commit for many calls)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backend.models.encoder import Encoder
from backend.store.sql_store import SqlStore


def text_key(text: str) -> str:
    """sha256 of a text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def body_key(source: str, max_seq_length: int | None = None) -> str:
    """Short stable key of a body: its ``source`` (directory, plus the precision of a served export) and, when given,
    the token limit it truncates at."""
    identity = source if max_seq_length is None else f"{source}|max_seq_length={max_seq_length}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def encoder_key(encoder: Any) -> str:
    """``body_key`` of a loaded body (``Encoder``, a served ``BatchedEncoder`` or an ONNX body)."""
    limit = getattr(encoder, "max_seq_length", None)
    if limit is None:
        limit = getattr(getattr(encoder, "body", None), "max_seq_length", None)
    return body_key(str(encoder.source), int(limit) if limit is not None else None)


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
        key = encoder_key(encoder)
        hashes = [text_key(t) for t in texts]
        found = self.store.embeddings.get(key, hashes)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in found}
        if missing:
            fresh = encoder.encode(list(missing.values()))
            new = {h: fresh[i].astype(np.float32).tobytes() for i, h in enumerate(missing)}
            self.write(key, new)
            found.update(new)
        return np.stack([np.frombuffer(found[h], dtype=np.float32) for h in hashes])
