"""The one call site of a strategy: give it what it declared it needs, check what it returns.

``backend.ranking`` (the queue Label Studio serves) and ``tools.simulation`` (offline curves) both call strategies
through ``run_strategy``, so a strategy behaves the same in both, and a broken one (a user's own) fails with a
``StrategyError`` that names what it returned instead of a wrong queue.

On a large pool, ``max_pool`` subsamples it: the strategy sees a uniform random sample of ``max_pool`` rows (drawn
with the call's ``rng``) and its picks are mapped back to pool positions. Diversity strategies cost
O(pool × picks × dim) and every embedding of the pool must be computed first; a sample keeps both bounded, and
embeddings given as a function are asked only for the sampled rows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from strategies.base import FloatArray, IntArray, Selection, check_pool
from strategies.errors import MissingInputError, StrategyError
from strategies.registry import StrategyInfo


def _accepts_cardinality(info: StrategyInfo) -> bool:
    params = inspect.signature(info.strategy, follow_wrapped=False).parameters.values()
    return any(p.name == "label_cardinality" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


Embeddings = FloatArray | Callable[[IntArray], FloatArray]
"""Pool embeddings (n_pool, dim), or a function giving the rows of the pool positions it is passed."""


def subsample(n_pool: int, max_pool: int | None, rng: np.random.Generator) -> IntArray | None:
    """The sorted pool positions a strategy sees when ``n_pool`` exceeds ``max_pool`` (a uniform sample of
    ``max_pool``), else None (all of them). ``max_pool`` None or 0: never."""
    if not max_pool or n_pool <= max_pool:
        return None
    return np.sort(rng.choice(n_pool, size=max_pool, replace=False)).astype(np.int64)


def run_strategy(
    info: StrategyInfo,
    proba: FloatArray,
    n_instances: int,
    *,
    rng: np.random.Generator,
    embeddings: Embeddings | None = None,
    labeled_embeddings: FloatArray | None = None,
    label_cardinality: float | None = None,
    max_pool: int | None = None,
) -> Selection:
    """``n_instances`` pool positions (rows of ``proba`` (n_pool, k)), most informative first; with ``max_pool``,
    chosen among a random sample of that many rows (``subsample``; at least ``n_instances``).

    Raises:
        MissingInputError: the strategy needs embeddings and got none.
        StrategyError: it returned other than ``n_instances`` distinct positions in ``[0, n_pool)``.
    """
    positions = subsample(len(proba), max(max_pool, n_instances) if max_pool else None, rng)
    seen = proba if positions is None else np.asarray(proba)[positions]
    pool_embeddings = _rows(embeddings, positions, len(proba), needed=info.needs_embeddings)
    selection = _run(info, seen, n_instances, rng, pool_embeddings, labeled_embeddings, label_cardinality)
    return selection if positions is None else Selection(positions[selection.indices], selection.scores)


def _rows(embeddings: Embeddings | None, positions: IntArray | None, n_pool: int, *, needed: bool) -> FloatArray | None:
    """The embeddings of the sampled ``positions`` (None: every row); a function is asked only when the strategy
    ``needed`` them."""
    if embeddings is None or (callable(embeddings) and not needed):
        return None
    if callable(embeddings):
        return embeddings(positions if positions is not None else np.arange(n_pool, dtype=np.int64))
    return embeddings if positions is None else np.asarray(embeddings)[positions]


def _run(
    info: StrategyInfo,
    proba: FloatArray,
    n_instances: int,
    rng: np.random.Generator,
    embeddings: FloatArray | None,
    labeled_embeddings: FloatArray | None,
    label_cardinality: float | None,
) -> Selection:
    pool = check_pool(proba, n_instances)
    if info.needs_embeddings and embeddings is None:
        raise MissingInputError(f"strategy {info.name!r} needs pool embeddings ({pool.shape[0]}, dim); got None")
    kwargs: dict[str, object] = {"embeddings": embeddings, "labeled_embeddings": labeled_embeddings, "rng": rng}
    if _accepts_cardinality(info):
        kwargs["label_cardinality"] = label_cardinality
    selection = info.strategy(pool, n_instances, **kwargs)  # type: ignore[arg-type]
    indices = np.asarray(selection.indices, dtype=np.int64)
    scores = np.asarray(selection.scores, dtype=np.float64)
    in_range = len(indices) == 0 or (indices.min() >= 0 and indices.max() < pool.shape[0])
    if len(indices) != n_instances or len(np.unique(indices)) != n_instances or not in_range:
        raise StrategyError(
            f"strategy {info.name!r} returned positions {indices.tolist()[:10]}…; "
            f"expected {n_instances} distinct pool positions in [0, {pool.shape[0]})"
        )
    if scores.shape != indices.shape:
        raise StrategyError(f"strategy {info.name!r} returned {len(scores)} scores for {len(indices)} positions")
    return Selection(indices, scores)
