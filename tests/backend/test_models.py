"""Heads, classifier persistence, the training policy and the background runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.labelstudio.label_config import parse_label_config
from backend.models.classifier import TextClassifier, zero_shot_classifier
from backend.models.encoder import Encoder
from backend.models.heads import ZeroShotHead, fit_head, label_prompt, linear_proba
from backend.training.policy import should_train
from tests.conftest import config_xml, read_rows


def test_label_prompt() -> None:
    assert label_prompt("severe_toxic", "") == "severe toxic"
    assert label_prompt("Sci/Tech", "science") == "Sci / Tech: science"


def test_zero_shot_head_shapes_and_ranges() -> None:
    labels = np.eye(3, dtype=np.float32)
    emb = np.array([[1, 0, 0], [0, 0.6, 0.8]], dtype=np.float32)
    single = ZeroShotHead(("a", "b", "c"), False, labels).predict_proba(emb)
    assert single.shape == (2, 3) and np.allclose(single.sum(1), 1.0) and single[0].argmax() == 0
    multi = ZeroShotHead(("a", "b", "c"), True, labels).predict_proba(emb)
    assert ((multi >= 0) & (multi <= 1)).all() and multi[1, 2] > 0.5 > multi[1, 0]


def test_fitted_head_orders_columns_by_config_labels() -> None:
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.normal(0, 0.1, (10, 4)) + [1, 0, 0, 0], rng.normal(0, 0.1, (10, 4)) + [0, 1, 0, 0]])
    head = fit_head(("x", "y", "z"), False, emb, [["z"]] * 10 + [["x"]] * 10, seed=0)
    assert head is not None and head.columns == (0, 2)
    proba = head.predict_proba(emb[:1])
    assert proba.shape == (1, 3) and proba[0, 1] == 0.0 and proba[0].argmax() == 2
    assert fit_head(("x", "y"), False, emb, [["x"]] * 20, seed=0) is None
    multi = fit_head(("x", "y", "z"), True, emb, [["x", "y"]] * 10 + [["y"]] * 10, seed=0)
    assert multi is not None and multi.columns == (0,)  # y is always on, z never: neither is learnable


@pytest.mark.model
def test_served_head_probabilities_are_scikit_learns(encoder: Encoder) -> None:
    """The head's numpy path (``linear_proba``) gives what ``LogisticRegression.predict_proba`` gives: two classes,
    four, and per-label estimators of a multi-label head, on real ag_news embeddings."""
    rows = read_rows("ag_news", 120)
    emb = encoder.encode([r["text"] for r in rows])
    train, held = emb[:80], emb[80:]
    labels = tuple(sorted({r["label"] for r in rows}))
    assert len(labels) == 4
    four = fit_head(labels, False, train, [[r["label"]] for r in rows[:80]], seed=0)
    two = fit_head(
        labels[:2], False, train, [[labels[0] if r["label"] == labels[0] else labels[1]] for r in rows[:80]], seed=0
    )
    multi = fit_head(
        labels,
        True,
        train,
        [[r["label"], labels[0]] if i % 3 else [r["label"]] for i, r in enumerate(rows[:80])],
        seed=0,
    )
    for head in (four, two, multi):
        assert head is not None
        estimators = head.estimator if head.multi_label else [head.estimator]
        for est in estimators:
            ours = linear_proba(est, held)
            assert ours.shape == (len(held), len(est.classes_))
            np.testing.assert_allclose(ours, est.predict_proba(held), rtol=0, atol=1e-6)  # float32 rounding


@pytest.mark.model
def test_classifier_save_load_round_trip(encoder: Any, tmp_path: Path) -> None:
    spec = parse_label_config(config_xml("sentiment_and_topic"))
    model = zero_shot_classifier(1, encoder, spec, 0.05)
    texts = [r["text"] for r in read_rows("sst2", 5)]
    before = model.predict({"sentiment": texts, "topic": texts})
    model.save(tmp_path / "v")
    loaded = TextClassifier.load(
        tmp_path / "v", load_encoder=lambda p: Encoder.load(p, max_seq_length=128, batch_size=8)
    )
    after = loaded.predict({"sentiment": texts, "topic": texts})
    assert loaded.version == model.version
    for name in ("sentiment", "topic"):
        assert np.allclose(before[name], after[name], atol=1e-5)


@pytest.mark.parametrize(
    ("usable", "trained_on", "every", "expected"),
    [
        (9, 0, 10, False),
        (10, 0, 10, True),
        (25, 16, 10, False),
        (26, 16, 10, True),
        (100, 0, 0, False),
        (3, 0, 1, False),
    ],
)
def test_should_train(usable: int, trained_on: int, every: int, expected: bool) -> None:
    assert should_train(usable, trained_on, train_every=every, min_labels=4) is expected
