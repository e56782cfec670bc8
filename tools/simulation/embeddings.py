"""Texts → vectors the way tagloop serves them: the served body, through tagloop's one embedding cache.

``ServedBody.of(services)`` takes ``services.models.served_base_encoder()`` (the ONNX export of the base body after
its parity check, or torch per ``serve_precision``) and embeds through ``services.embeddings`` (the store's cache,
keyed by body and text hash). ``embed_in_chunks`` feeds it ``ENCODE_CHUNK`` texts at a time to report progress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backend.models.encoder import Encoder

if TYPE_CHECKING:
    from backend.services import Services

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (e.g. ``("embed pool", 512, 5000)``)."""
Embed = Callable[[Sequence[str]], np.ndarray]
"""texts → (len(texts), dim) float32 unit vectors, row i = texts[i]."""

ENCODE_CHUNK = 256
"""Texts per ``embed`` call (the body batches further inside); progress is reported per chunk."""


@dataclass(frozen=True)
class ServedBody:
    """The served body: ``encoder`` embeds the label prompts of the zero-shot prior (as ``zero_shot_heads`` does
    when serving) and ``embed`` embeds task texts (through the embedding cache when built with ``of``)."""

    encoder: Encoder
    embed: Embed

    @classmethod
    def of(cls, services: Services) -> ServedBody:
        """The base body ``services`` serve, embedding through their cache (the first use in a fresh data dir
        exports and parity-checks it)."""
        encoder = services.models.served_base_encoder()
        return cls(encoder, lambda texts: services.embeddings.encode(encoder, texts))

    @classmethod
    def uncached(cls, encoder: Encoder) -> ServedBody:
        """``encoder`` directly, without a cache (a fine-tuned body, or tests)."""
        return cls(encoder, encoder.encode)


def embed_in_chunks(
    texts: Sequence[str], embed: Embed, *, progress: ProgressCallback | None = None, stage: str = "embed"
) -> np.ndarray:
    """(len(texts), dim) float32 vectors of ``texts``, ``ENCODE_CHUNK`` at a time, reporting texts done."""
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        parts.append(np.asarray(embed(texts[start : start + ENCODE_CHUNK]), dtype=np.float32))
        if progress is not None:
            progress(stage, start + len(parts[-1]), len(texts))
    return np.concatenate(parts) if parts else np.asarray(embed([]), dtype=np.float32)
