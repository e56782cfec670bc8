"""What Label Studio shows and sorts by: the certainty each strategy ranks by, and the one call site."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import (
    STRATEGIES,
    MissingInputError,
    Selection,
    StrategyError,
    declare,
    describe,
    queue_scores,
    row_certainty,
    run_strategy,
    scores,
)
from tests.strategies.test_contract import pool

HAND = np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.6, 0.39, 0.01], [0.5, 0.25, 0.25]])


def test_certainties_by_hand() -> None:
    np.testing.assert_allclose(scores.top_probability(HAND), [0.98, 0.34, 0.6, 0.5])
    np.testing.assert_allclose(scores.margin_certainty(HAND), [0.97, 0.01, 0.21, 0.25])
    assert scores.entropy_certainty(np.array([[1 / 3] * 3]))[0] == pytest.approx(0.0, abs=1e-9)
    assert scores.entropy_certainty(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(1.0)
    multi = np.array([[0.9, 0.5, 0.0]])
    assert scores.mean_label_certainty(multi)[0] == pytest.approx((0.8 + 0.0 + 1.0) / 3)
    assert scores.min_label_certainty(multi)[0] == pytest.approx(0.0)


@pytest.mark.parametrize("name", sorted(n for n, info in STRATEGIES.items() if info.certainty is not None))
def test_a_strategy_ranks_by_its_certainty_ascending(name: str) -> None:
    info = STRATEGIES[name]
    proba = pool(60, 4, seed=2)[0]
    if info.multi_label:
        proba = np.random.default_rng(2).random((60, 4))
    sel = run_strategy(info, proba, 60, rng=np.random.default_rng(0))
    shown = queue_scores(info.certainty, proba[sel.indices], multi_label=info.multi_label)
    np.testing.assert_allclose(shown, row_certainty(info.certainty, proba[sel.indices], multi_label=info.multi_label))
    assert (np.diff(shown) >= -1e-12).all() and shown.min() >= 0 and shown.max() <= 1


@pytest.mark.parametrize("name", sorted(n for n, info in STRATEGIES.items() if info.certainty is None))
def test_other_strategies_get_rank_matched_real_certainties(name: str) -> None:
    info = STRATEGIES[name]
    proba, emb, labeled = pool(50, 4, seed=3)
    sel = run_strategy(info, proba, 10, rng=np.random.default_rng(0), embeddings=emb, labeled_embeddings=labeled)
    shown = queue_scores(info.certainty, proba[sel.indices], multi_label=info.multi_label)
    own = row_certainty(None, proba[sel.indices], multi_label=info.multi_label)
    np.testing.assert_allclose(shown, np.sort(own))  # the batch's own certainties, in queue order
    assert (np.diff(shown) >= 0).all()


def test_the_call_site_checks_needs_and_output() -> None:
    proba = pool(20)[0]
    with pytest.raises(MissingInputError, match="needs pool embeddings"):
        run_strategy(STRATEGIES["coreset"], proba, 3, rng=np.random.default_rng(0))

    undeclared = describe("tests.strategies.test_certainty.undeclared")
    assert undeclared.needs_embeddings and undeclared.certainty is None  # no declaration: given everything


def test_a_declared_user_strategy_is_described_by_its_declaration() -> None:
    info = describe("tests.strategies.test_certainty.broken")
    assert not info.needs_embeddings and info.certainty is scores.top_probability
    with pytest.raises(StrategyError, match="expected 3 distinct pool positions"):
        run_strategy(info, pool(20)[0], 3, rng=np.random.default_rng(0))


@declare(certainty=scores.top_probability)
def broken(proba: np.ndarray, n_instances: int, **_: object) -> Selection:
    """Returns the same position n times."""
    return Selection(np.zeros(n_instances, dtype=np.int64), np.zeros(n_instances))


def undeclared(proba: np.ndarray, n_instances: int, **_: object) -> Selection:
    """A user's strategy without a declaration."""
    return Selection(np.arange(n_instances, dtype=np.int64), np.zeros(n_instances))
