"""One contract for every registered strategy, plus hand-computed tables and stopping criteria."""

from __future__ import annotations

import numpy as np
import pytest

import strategies
from strategies import (
    NEEDS_EMBEDDINGS,
    REGISTRY,
    EmptyPoolError,
    MissingInputError,
    PoolTooSmallError,
    Selection,
    UnknownStrategyError,
    get_strategy,
    scores,
)
from strategies.stopping import cohens_kappa, overall_uncertainty, stabilizing_predictions


def pool(n: int = 40, k: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return proba, rng.normal(size=(n, 8)), rng.normal(size=(5, 8))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_contract(name: str) -> None:
    strategy = get_strategy(name)
    proba, emb, labeled = pool()
    sel = strategy(proba, 7, embeddings=emb, labeled_embeddings=labeled, rng=np.random.default_rng(3))
    assert isinstance(sel, Selection)
    assert sel.indices.dtype == np.int64 and sel.scores.dtype == np.float64
    assert len(sel.indices) == 7 == len(set(sel.indices.tolist())) == len(sel.scores)
    assert sel.indices.min() >= 0 and sel.indices.max() < 40
    again = strategy(proba, 7, embeddings=emb, labeled_embeddings=labeled, rng=np.random.default_rng(3))
    assert np.array_equal(sel.indices, again.indices)
    whole = strategy(proba, 40, embeddings=emb, labeled_embeddings=labeled, rng=np.random.default_rng(3))
    assert sorted(whole.indices.tolist()) == list(range(40))
    with pytest.raises(EmptyPoolError, match="0 rows"):
        strategy(proba[:0], 1, embeddings=emb[:0], rng=np.random.default_rng(0))
    with pytest.raises(PoolTooSmallError, match="40 available / 41 requested"):
        strategy(proba, 41, embeddings=emb, rng=np.random.default_rng(0))
    if name in NEEDS_EMBEDDINGS:
        with pytest.raises(MissingInputError, match="needs embeddings"):
            strategy(proba, 3)


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy"])
def test_uncertainty_orders_hand_table(name: str) -> None:
    proba = np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.6, 0.39, 0.01], [0.5, 0.25, 0.25]])
    expected = {"least_confidence": [1, 3, 2, 0], "margin": [1, 2, 3, 0], "entropy": [1, 3, 2, 0]}[name]
    assert get_strategy(name)(proba, 4).indices.tolist() == expected


def test_scores_hand_values() -> None:
    p = np.array([[0.7, 0.2, 0.1]])
    assert scores.least_confidence(p)[0] == pytest.approx(0.3)
    assert scores.margin(p)[0] == pytest.approx(0.5)
    assert scores.entropy(p)[0] == pytest.approx(-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)))
    m = np.array([[0.9, 0.5, 0.2]])
    assert scores.mean_label_uncertainty(m)[0] == pytest.approx(1 - (0.8 + 0.0 + 0.6) / 3)
    assert scores.max_label_uncertainty(m)[0] == pytest.approx(1.0)
    assert scores.cardinality_inconsistency(m, 2.5)[0] == pytest.approx(0.5)


def test_ties_are_broken_at_random_with_the_seed() -> None:
    proba = np.full((6, 2), 0.5)
    picks = {tuple(get_strategy("margin")(proba, 3, rng=np.random.default_rng(s)).indices) for s in range(10)}
    assert len(picks) > 1


def test_coreset_spreads_and_skips_labeled_region() -> None:
    emb = np.array([[1, 0], [0.99, 0.1], [0, 1], [-1, 0], [0.98, -0.1]], dtype=float)
    sel = get_strategy("coreset")(np.full((5, 2), 0.5), 2, embeddings=emb, labeled_embeddings=np.array([[1.0, 0.0]]))
    assert set(sel.indices.tolist()) == {2, 3}


def test_balanced_cold_start_covers_every_label() -> None:
    proba = np.array([[0.9, 0.1]] * 8 + [[0.4, 0.6]] * 2)
    assert set(get_strategy("balanced_cold_start")(proba, 2).indices.tolist()) & {8, 9}


def test_unknown_and_dotted_strategies() -> None:
    with pytest.raises(UnknownStrategyError, match="known: \\["):
        get_strategy("smartest")
    assert get_strategy("strategies.uncertainty.margin_sampling") is REGISTRY["margin"]
    with pytest.raises(UnknownStrategyError, match="could not be loaded"):
        get_strategy("nope.module.fn")


def test_stopping_criteria() -> None:
    a = np.array([0, 1, 1, 0, 2])
    assert cohens_kappa(a, a) == pytest.approx(1.0)
    assert cohens_kappa(a, np.array([1, 0, 0, 1, 2])) < 0.5
    assert not stabilizing_predictions([a, a]).stop
    assert stabilizing_predictions([a, a, a, a]).stop
    assert not stabilizing_predictions([a, a, np.array([1, 0, 0, 1, 2]), a]).stop
    assert overall_uncertainty(np.array([[0.99, 0.01], [0.97, 0.03]])).stop
    assert not overall_uncertainty(np.array([[0.5, 0.5], [0.6, 0.4]])).stop


def test_public_names() -> None:
    assert set(strategies.__all__) <= set(dir(strategies))


@pytest.mark.parametrize("name", ["margin", "coreset"])
def test_a_large_pool_is_subsampled_and_only_the_sample_is_embedded(name: str) -> None:
    proba, emb, labeled = pool(n=40)
    info = strategies.describe(name)
    asked: list[list[int]] = []

    def embed(rows: np.ndarray) -> np.ndarray:
        asked.append(rows.tolist())
        return emb[rows]

    sample = strategies.subsample(40, 12, np.random.default_rng(5))
    assert sample is not None and len(sample) == 12 == len(set(sample.tolist())) and list(sample) == sorted(sample)
    sel = strategies.run_strategy(
        info, proba, 5, rng=np.random.default_rng(5), embeddings=embed, labeled_embeddings=labeled, max_pool=12
    )
    assert len(set(sel.indices.tolist())) == 5 and set(sel.indices.tolist()) <= set(sample.tolist())
    # the strategy saw exactly the sampled rows; picks mapped back to pool positions
    direct = strategies.run_strategy(
        info, proba[sample], 5, rng=_after_sample(5, 40, 12),
        embeddings=emb[sample], labeled_embeddings=labeled,
    )  # fmt: skip
    assert sample[direct.indices].tolist() == sel.indices.tolist()
    assert asked == ([sample.tolist()] if info.needs_embeddings else [])
    # a pool within max_pool (or max_pool 0) is not sampled, and the rng is not drawn from
    whole = strategies.run_strategy(info, proba, 5, rng=np.random.default_rng(5), embeddings=emb, max_pool=40)
    plain = strategies.run_strategy(info, proba, 5, rng=np.random.default_rng(5), embeddings=emb)
    assert whole.indices.tolist() == plain.indices.tolist()
    assert strategies.subsample(40, 0, np.random.default_rng(5)) is None


def _after_sample(seed: int, n_pool: int, max_pool: int) -> np.random.Generator:
    """A generator in the state ``run_strategy`` leaves after drawing its sample."""
    rng = np.random.default_rng(seed)
    strategies.subsample(n_pool, max_pool, rng)
    return rng
