"""Use a modAL query function (``fn(classifier, X, n_instances=...)``) as a tagloop strategy.

modAL's query functions call ``classifier.predict_proba(X)``; the adapter hands them a stand-in classifier
that returns the given probabilities for pool positions, so no model or data leaves tagloop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from strategies.base import Context, FloatArray, QueryStrategy, Selection, query_strategy


class _FixedProba:
    """Looks like a fitted classifier to modAL: ``predict_proba(X)`` with X = pool positions (n, 1)."""

    def __init__(self, proba: FloatArray) -> None:
        self.proba = proba

    def predict_proba(self, X: NDArray[Any]) -> FloatArray:
        return self.proba[np.asarray(X, dtype=np.int64).ravel()]


def from_modal(query: Callable[..., Any]) -> QueryStrategy:
    """Wrap a modAL query function; its returned indices become the ``Selection`` (scores are rank-based)."""

    def core(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
        positions = np.arange(pool.shape[0]).reshape(-1, 1)
        out = query(_FixedProba(pool), positions, n_instances=n_instances)
        indices = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.int64).ravel()[:n_instances]
        return Selection(indices, np.linspace(1.0, 0.0, num=len(indices), dtype=np.float64))

    core.__name__ = core.__qualname__ = f"modal_{getattr(query, '__name__', 'query')}"
    core.__doc__ = f"modAL's {getattr(query, '__name__', 'query function')} through tagloop's adapter."
    return query_strategy(core)
