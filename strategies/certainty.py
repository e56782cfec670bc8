"""The ``score`` Label Studio shows and sorts its queue by: the model's certainty as the strategy measures it.

Label Studio's *Uncertainty sampling* serves tasks by prediction score, lowest first, and shows the score as a
percentage. A strategy that ranks by a per-row measure declares its certainty (``StrategyInfo.certainty``): least
confidence → top probability, margin → p1 − p2, entropy → 1 − H / log k, the multi-label ones → mean or minimum of
|2p − 1|; ranking most uncertain first is then exactly ordering by that certainty ascending, so each pushed task
shows its own certainty. A strategy whose order is not a per-row measure (random, diversity, cold start, label
cardinality) gets *rank-matched* certainties: the top probability (mean |2p − 1| for multi-label) of the tasks
it picked, sorted ascending and handed out in its queue order. Every value is a real certainty of the batch, and
the queue order is the strategy's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from strategies import scores
from strategies.base import FloatArray

Certainty = Callable[[FloatArray], FloatArray]
"""(n, k) probabilities → (n,) certainties in [0, 1], higher = more certain."""


def default_certainty(multi_label: bool) -> Certainty:
    """The certainty of a strategy that declares none: top probability, or mean |2p − 1| for multi-label rows."""
    return scores.mean_label_certainty if multi_label else scores.top_probability


def row_certainty(certainty: Certainty | None, proba: FloatArray, *, multi_label: bool) -> FloatArray:
    """(n,) certainty of each row of ``proba`` (n, k) by the strategy's measure (or the default)."""
    measure = certainty or default_certainty(multi_label)
    return np.clip(np.asarray(measure(np.asarray(proba, dtype=np.float64)), dtype=np.float64), 0.0, 1.0)


def queue_scores(certainty: Certainty | None, picked: FloatArray, *, multi_label: bool) -> FloatArray:
    """Scores for the rows a strategy picked, in its queue order (``picked``: (n, k) probabilities, first = next):
    non-decreasing, so Label Studio serves them in that order. Each row's own certainty when the strategy declares
    one; else rank-matched (see the module docstring)."""
    values = row_certainty(certainty, picked, multi_label=multi_label)
    if certainty is None:
        return np.sort(values)
    return np.maximum.accumulate(values)  # a no-op for a strategy that ranks by its certainty (ties kept)
