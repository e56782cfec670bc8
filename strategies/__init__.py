"""Query strategies: plain functions over class probabilities (n_pool, n_labels) and embeddings.

Every strategy has the signature of ``QueryStrategy`` and returns a ``Selection`` of **pool positions**
(rows of the ``proba`` it was given), most informative first. Higher score = more informative. Depends on
numpy only.
"""

from strategies.base import QueryStrategy, Selection, select_top
from strategies.errors import (
    EmptyPoolError,
    MissingInputError,
    PoolTooSmallError,
    StrategyError,
    UnknownStrategyError,
)
from strategies.registry import MULTI_LABEL, NEEDS_EMBEDDINGS, REGISTRY, get_strategy

__all__ = [
    "MULTI_LABEL",
    "NEEDS_EMBEDDINGS",
    "REGISTRY",
    "EmptyPoolError",
    "MissingInputError",
    "PoolTooSmallError",
    "QueryStrategy",
    "Selection",
    "StrategyError",
    "UnknownStrategyError",
    "get_strategy",
    "select_top",
]
