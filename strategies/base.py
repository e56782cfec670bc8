"""Shared types: ``Selection``, the ``QueryStrategy`` signature, input validation and ``select_top``.

Index space: every index a strategy returns is a **pool position**, i.e. a row of the ``proba`` array it was
given. Convention: **higher score = more informative**.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from strategies.errors import EmptyPoolError, MissingInputError, PoolTooSmallError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class Selection(NamedTuple):
    """What a strategy picked: pool positions, most informative first, and their scores (aligned)."""

    indices: IntArray
    scores: FloatArray


class QueryStrategy(Protocol):
    """A query strategy: probabilities (n_pool, n_labels) and optional embeddings → ``Selection``."""

    def __call__(
        self,
        proba: FloatArray,
        n_instances: int,
        *,
        embeddings: FloatArray | None = None,
        labeled_embeddings: FloatArray | None = None,
        rng: np.random.Generator | None = None,
        label_cardinality: float | None = None,
    ) -> Selection: ...


def check_pool(proba: NDArray[np.floating], n_instances: int) -> FloatArray:
    """Validate a pool: 2-D, non-empty, and at least ``n_instances`` rows. Returns it as float64."""
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim != 2:
        raise MissingInputError(f"proba: got an array of shape {arr.shape}, expected (n_pool, n_labels)")
    if arr.shape[0] == 0:
        raise EmptyPoolError("pool is empty: 0 rows available, at least 1 needed")
    if n_instances < 1:
        raise PoolTooSmallError(f"n_instances: got {n_instances}, expected >= 1")
    if n_instances > arr.shape[0]:
        raise PoolTooSmallError(f"pool exhausted: {arr.shape[0]} available / {n_instances} requested")
    return arr


def check_embeddings(embeddings: NDArray[np.floating] | None, n_pool: int, name: str = "embeddings") -> FloatArray:
    """Validate (n_pool, dim) embeddings for strategies that need them."""
    if embeddings is None:
        raise MissingInputError(f"{name}: this strategy needs embeddings of shape ({n_pool}, dim), got None")
    arr = np.asarray(embeddings, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n_pool:
        raise MissingInputError(f"{name}: got shape {arr.shape}, expected ({n_pool}, dim)")
    return arr


def select_top(scores: NDArray[np.floating], n_instances: int, *, rng: np.random.Generator | None = None) -> Selection:
    """The ``n_instances`` highest scores; ties are broken at random with ``rng`` (seed 0 if None)."""
    s = np.asarray(scores, dtype=np.float64)
    generator = rng if rng is not None else np.random.default_rng(0)
    jitter = generator.random(s.shape[0])
    order = np.lexsort((jitter, -s))[:n_instances]
    return Selection(order.astype(np.int64), s[order])


@dataclass(frozen=True)
class Context:
    """The optional inputs of a strategy, bundled: embeddings (n_pool, dim), labeled embeddings, rng, and the
    labeled set's mean label count (multi-label)."""

    embeddings: FloatArray | None
    labeled_embeddings: FloatArray | None
    rng: np.random.Generator
    label_cardinality: float | None


Core = Callable[[FloatArray, int, Context], Selection]


def query_strategy(core: Core) -> QueryStrategy:
    """Give ``core(pool, n_instances, context)`` the ``QueryStrategy`` signature; the pool is validated first
    and ``rng`` defaults to a generator seeded with 0."""

    @functools.wraps(core)
    def strategy(
        proba: FloatArray,
        n_instances: int,
        *,
        embeddings: FloatArray | None = None,
        labeled_embeddings: FloatArray | None = None,
        rng: np.random.Generator | None = None,
        label_cardinality: float | None = None,
    ) -> Selection:
        pool = check_pool(proba, n_instances)
        generator = rng if rng is not None else np.random.default_rng(0)
        return core(pool, n_instances, Context(embeddings, labeled_embeddings, generator, label_cardinality))

    return strategy
