"""Uncertainty sampling (single- and multi-label) and the random baseline, built from ``scores``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from strategies import scores
from strategies.base import FloatArray, QueryStrategy, Selection, check_pool, select_top

ScoreFn = Callable[[FloatArray], FloatArray]


def make_query_strategy(score_fn: ScoreFn, name: str, doc: str) -> QueryStrategy:
    """A strategy that ranks the pool by ``score_fn(proba)`` (higher first) with random tie-breaking."""

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
        return select_top(score_fn(pool), n_instances, rng=rng)

    strategy.__name__ = strategy.__qualname__ = name
    strategy.__doc__ = doc
    return strategy


def random_sampling(
    proba: FloatArray,
    n_instances: int,
    *,
    embeddings: FloatArray | None = None,
    labeled_embeddings: FloatArray | None = None,
    rng: np.random.Generator | None = None,
    label_cardinality: float | None = None,
) -> Selection:
    """Uniformly random pool positions (the baseline every strategy is measured against)."""
    pool = check_pool(proba, n_instances)
    generator = rng if rng is not None else np.random.default_rng(0)
    return select_top(generator.random(pool.shape[0]), n_instances, rng=generator)


least_confidence_sampling = make_query_strategy(
    scores.least_confidence, "least_confidence_sampling", "Highest 1 − max p first (Settles 2009)."
)
margin_sampling = make_query_strategy(
    scores.margin, "margin_sampling", "Smallest gap between the two most probable labels first (Settles 2009)."
)
entropy_sampling = make_query_strategy(
    scores.entropy, "entropy_sampling", "Highest predictive entropy first (Settles 2009)."
)
mean_label_uncertainty_sampling = make_query_strategy(
    scores.mean_label_uncertainty,
    "mean_label_uncertainty_sampling",
    "Multi-label: lowest mean per-label confidence |2p − 1| first (Esuli & Sebastiani 2009).",
)
max_label_uncertainty_sampling = make_query_strategy(
    scores.max_label_uncertainty,
    "max_label_uncertainty_sampling",
    "Multi-label: lowest minimum per-label confidence first (Esuli & Sebastiani 2009).",
)


def cardinality_inconsistency_sampling(
    proba: FloatArray,
    n_instances: int,
    *,
    embeddings: FloatArray | None = None,
    labeled_embeddings: FloatArray | None = None,
    rng: np.random.Generator | None = None,
    label_cardinality: float | None = None,
) -> Selection:
    """Multi-label: predicted label count farthest from the labeled set's mean count first (Li & Guo 2013).

    ``label_cardinality`` is the mean number of labels per labeled row; without it, the pool's mean predicted
    count is used. Ties (common: counts are integers) are broken by mean label uncertainty, then at random.
    """
    pool = check_pool(proba, n_instances)
    mean = label_cardinality if label_cardinality is not None else float((pool >= 0.5).sum(axis=1).mean())
    combined = scores.cardinality_inconsistency(pool, mean) + 0.5 * scores.mean_label_uncertainty(pool)
    return select_top(combined, n_instances, rng=rng)
