"""An on-disk embedding cache: each text is encoded once per encoder, then read back from ``.npy`` shards.

Layout under the cache directory, one sub-directory per encoder (named by the sha256 of its identity)::

    <cache_dir>/<sha256(identity)[:16]>/
        identity.txt        the encoder identity, for people
        index.json          {"identity": ..., "entries": {sha256(identity + NUL + text): [shard file, row]}}
        shard-<uuid>.npy    (n_rows, dim) float32 unit vectors

Shards are written once and never changed; the index is replaced atomically after each shard, so an
interrupted run keeps what it encoded. Two processes filling one cache at once can lose each other's index
entries (the texts are then encoded again), never corrupt a vector.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (e.g. ``("embed pool", 512, 5000)``)."""

ENCODE_CHUNK = 256
"""Texts per ``encoder.encode`` call (the encoder batches further inside); progress is reported per chunk."""
SHARD_ROWS = 2048
"""New vectors per shard file: at most this much encoding is lost when a run is interrupted."""


class TextEncoder(Protocol):
    """What the cache needs from an encoder (``backend.models.encoder.Encoder`` fits)."""

    source: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors."""
        ...


def encoder_identity(encoder: TextEncoder) -> str:
    """The encoder's source, plus its token limit when it has one (truncation changes the vectors)."""
    max_seq_length = getattr(getattr(encoder, "body", None), "max_seq_length", None)
    return encoder.source if max_seq_length is None else f"{encoder.source}|max_seq_length={max_seq_length}"


def text_key(text: str, identity: str) -> str:
    """Cache key of a text under an encoder: sha256 of the identity, a NUL, and the text (hex)."""
    return hashlib.sha256(f"{identity}\x00{text}".encode()).hexdigest()


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def encode_in_chunks(
    texts: Sequence[str], encoder: TextEncoder, *, progress: ProgressCallback | None = None, stage: str = "embed"
) -> np.ndarray:
    """Encode without a cache, ``ENCODE_CHUNK`` texts at a time. Returns (len(texts), dim) float32."""
    parts: list[np.ndarray] = []
    done = 0
    for chunk in _chunks(texts, ENCODE_CHUNK):
        parts.append(np.asarray(encoder.encode(chunk), dtype=np.float32))
        done += len(chunk)
        if progress is not None:
            progress(stage, done, len(texts))
    return np.concatenate(parts) if parts else np.asarray(encoder.encode([]), dtype=np.float32)


class EmbeddingCache:
    """The vectors of one encoder under ``directory``; see the module docstring for the layout."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.identity = identity
        self.root = directory / hashlib.sha256(identity.encode()).hexdigest()[:16]

    @property
    def index_path(self) -> Path:
        """``index.json`` of this encoder."""
        return self.root / "index.json"

    def _read_index(self) -> dict[str, list]:
        """Key → [shard file name, row]; empty when absent, unreadable or for another identity."""
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("identity") != self.identity:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _write_index(self, added: dict[str, list]) -> None:
        """Merge ``added`` into the index on disk (re-read first) and replace it atomically."""
        entries = self._read_index()
        entries.update(added)
        tmp = self.root / f"index-{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"identity": self.identity, "entries": entries}), encoding="utf-8")
        os.replace(tmp, self.index_path)

    def _load_hits(self, keys: set[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``keys``; keys whose shard is missing or unreadable are left out (re-encoded)."""
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for key, entry in self._read_index().items():
            if key in keys and isinstance(entry, list) and len(entry) == 2:
                by_shard.setdefault(str(entry[0]), []).append((key, int(entry[1])))
        hits: dict[str, np.ndarray] = {}
        for shard, rows in by_shard.items():
            try:
                vectors = np.load(self.root / shard, mmap_mode="r")
            except (OSError, ValueError):
                continue
            for key, row in rows:
                if 0 <= row < len(vectors):
                    hits[key] = np.array(vectors[row], dtype=np.float32)
        return hits

    def _store(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Write one new shard for (len(keys), dim) ``vectors`` and index it."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "identity.txt").write_text(self.identity + "\n", encoding="utf-8")
        shard = f"shard-{uuid.uuid4().hex}.npy"
        np.save(self.root / shard, np.ascontiguousarray(vectors, dtype=np.float32))
        self._write_index({key: [shard, row] for row, key in enumerate(keys)})

    def embed(
        self,
        texts: Sequence[str],
        encoder: TextEncoder,
        *,
        progress: ProgressCallback | None = None,
        stage: str = "embed",
    ) -> np.ndarray:
        """Vectors of ``texts`` (row i = texts[i]), shape (len(texts), dim) float32; encodes only the missing.

        ``progress(stage, done, total)`` counts the distinct texts that had to be encoded.
        """
        keys = [text_key(t, self.identity) for t in texts]
        found = self._load_hits(set(keys))
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        todo_keys, todo_texts = list(missing), list(missing.values())
        for start in range(0, len(todo_keys), SHARD_ROWS):
            shard_keys = todo_keys[start : start + SHARD_ROWS]

            def report(_: str, done: int, __: int, offset: int = start) -> None:
                if progress is not None:
                    progress(stage, offset + done, len(todo_keys))

            vectors = encode_in_chunks(todo_texts[start : start + SHARD_ROWS], encoder, progress=report)
            self._store(shard_keys, vectors)
            found.update(zip(shard_keys, vectors, strict=True))
        if not keys:
            return np.asarray(encoder.encode([]), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def embed_texts(
    texts: Sequence[str],
    encoder: TextEncoder,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    stage: str = "embed",
) -> np.ndarray:
    """(len(texts), dim) float32 embeddings, through the cache under ``cache_dir`` when one is given."""
    if cache_dir is None:
        return encode_in_chunks(texts, encoder, progress=progress, stage=stage)
    return EmbeddingCache(cache_dir, encoder_identity(encoder)).embed(texts, encoder, progress=progress, stage=stage)
