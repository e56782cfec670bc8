"""The one call site of a strategy: give it what it declared it needs, check what it returns.

``backend.ranking`` (the queue Label Studio serves) and ``tools.simulation`` (offline curves) both call strategies
through ``run_strategy``, so a strategy behaves the same in both, and a broken one (a user's own) fails with a
``StrategyError`` that names what it returned instead of a wrong queue.
"""

from __future__ import annotations

import inspect

import numpy as np

from strategies.base import FloatArray, Selection, check_pool
from strategies.errors import MissingInputError, StrategyError
from strategies.registry import StrategyInfo


def _accepts_cardinality(info: StrategyInfo) -> bool:
    params = inspect.signature(info.strategy, follow_wrapped=False).parameters.values()
    return any(p.name == "label_cardinality" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def run_strategy(
    info: StrategyInfo,
    proba: FloatArray,
    n_instances: int,
    *,
    rng: np.random.Generator,
    embeddings: FloatArray | None = None,
    labeled_embeddings: FloatArray | None = None,
    label_cardinality: float | None = None,
) -> Selection:
    """``n_instances`` pool positions (rows of ``proba`` (n_pool, k)), most informative first.

    Raises:
        MissingInputError: the strategy needs embeddings and got none.
        StrategyError: it returned other than ``n_instances`` distinct positions in ``[0, n_pool)``.
    """
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
