"""Uncertainty sampling (single- and multi-label) and the random baseline, built from ``scores``."""

from __future__ import annotations

from collections.abc import Callable

from strategies import scores
from strategies.base import Context, FloatArray, QueryStrategy, Selection, query_strategy, select_top

ScoreFn = Callable[[FloatArray], FloatArray]


def make_query_strategy(score_fn: ScoreFn, name: str, doc: str) -> QueryStrategy:
    """A strategy that ranks the pool by ``score_fn(proba)`` (higher first) with random tie-breaking."""

    def core(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
        return select_top(score_fn(pool), n_instances, rng=ctx.rng)

    core.__name__ = core.__qualname__ = name
    core.__doc__ = doc
    return query_strategy(core)


@query_strategy
def random_sampling(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Uniformly random pool positions (the baseline every strategy is measured against)."""
    return select_top(ctx.rng.random(pool.shape[0]), n_instances, rng=ctx.rng)


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


@query_strategy
def cardinality_inconsistency_sampling(pool: FloatArray, n_instances: int, ctx: Context) -> Selection:
    """Multi-label: predicted label count farthest from the labeled set's mean count first (Li & Guo 2013).

    ``label_cardinality`` is the mean number of labels per labeled row; without it, the pool's mean predicted
    count is used. Ties (common: counts are integers) are broken by mean label uncertainty, then at random.
    """
    given = ctx.label_cardinality
    mean = given if given is not None else float((pool >= 0.5).sum(axis=1).mean())
    combined = scores.cardinality_inconsistency(pool, mean) + 0.5 * scores.mean_label_uncertainty(pool)
    return select_top(combined, n_instances, rng=ctx.rng)
