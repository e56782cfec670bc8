"""Parity with modAL's query functions where both exist (modAL 0.4, installed in the test venv)."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import get_strategy

modal_uncertainty = pytest.importorskip("modAL.uncertainty", reason="modAL-python is a test dependency")


class FixedProba:
    """A fitted-looking estimator with canned predict_proba (modAL calls only that)."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.proba[np.asarray(X, dtype=int).ravel()]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("least_confidence", "classifier_uncertainty"),
        ("margin", "classifier_margin"),
        ("entropy", "classifier_entropy"),
    ],
)
def test_scores_match_modal(ours: str, theirs: str) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(200, 5))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    X = np.arange(200).reshape(-1, 1)
    modal_scores = getattr(modal_uncertainty, theirs)(FixedProba(proba), X)
    sel = get_strategy(ours)(proba, 20)
    modal_top = np.argsort(-modal_scores if ours != "margin" else modal_scores, kind="stable")[:20]
    assert sel.indices.tolist() == modal_top.tolist()


@pytest.mark.parametrize("name", ["uncertainty_sampling", "margin_sampling", "entropy_sampling"])
def test_modal_query_function_through_the_adapter(name: str) -> None:
    from strategies.adapters import from_modal

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(100, 4))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ours = {"uncertainty_sampling": "least_confidence", "margin_sampling": "margin", "entropy_sampling": "entropy"}[
        name
    ]
    adapted = from_modal(getattr(modal_uncertainty, name))(proba, 10)
    assert adapted.indices.dtype == np.int64 and len(adapted.indices) == 10
    assert set(adapted.indices.tolist()) == set(get_strategy(ours)(proba, 10).indices.tolist())
