"""Query strategies: plain functions over class probabilities (n_pool, n_labels) and embeddings.

Every strategy has the signature of ``QueryStrategy`` and returns a ``Selection`` of **pool positions**
(rows of the ``proba`` it was given), most informative first. Higher score = more informative. Each registered
strategy declares what it needs (``StrategyInfo``: embeddings, multi-label, the certainty it ranks by). Depends on
numpy only.
"""

from strategies.base import QueryStrategy, Selection, select_top
from strategies.calling import run_strategy, subsample
from strategies.certainty import Certainty, queue_scores, row_certainty
from strategies.errors import (
    EmptyPoolError,
    MissingInputError,
    PoolTooSmallError,
    StrategyError,
    UnknownStrategyError,
)
from strategies.registry import (
    MULTI_LABEL,
    NEEDS_EMBEDDINGS,
    REGISTRY,
    STRATEGIES,
    StrategyInfo,
    declare,
    describe,
    get_strategy,
)

__all__ = [
    "MULTI_LABEL",
    "NEEDS_EMBEDDINGS",
    "REGISTRY",
    "STRATEGIES",
    "Certainty",
    "EmptyPoolError",
    "MissingInputError",
    "PoolTooSmallError",
    "QueryStrategy",
    "Selection",
    "StrategyError",
    "StrategyInfo",
    "UnknownStrategyError",
    "declare",
    "describe",
    "get_strategy",
    "queue_scores",
    "row_certainty",
    "run_strategy",
    "select_top",
    "subsample",
]
