"""Out-of-fold probabilities of a control's head on labeled embeddings (for thresholds, label-error suspects and
the slice audit): every row is scored by a head fitted without it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.models.heads import fit_head

FOLDS = 5
MAX_ROWS = 1000
"""Cross-validate on at most this many rows (a fixed random subsample): keeps training-time work bounded."""


def subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Row positions to cross-validate: all, or ``max_rows`` of them at random (sorted)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def out_of_fold(
    labels: tuple[str, ...],
    multi_label: bool,
    emb: np.ndarray,
    targets: Sequence[Sequence[str]],
    *,
    seed: int,
    folds: int = FOLDS,
) -> np.ndarray:
    """(n, len(labels)) probabilities; row i from a head fitted on the other folds. ``emb``: (n, dim),
    ``targets[i]``: the labels of row i. Rows whose training folds hold a single class get that fold's label
    frequencies."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(targets)
    if n < 2:
        raise ValueError(f"out_of_fold needs at least 2 labeled rows, got {n}")
    y = np.zeros((n, len(labels)))
    for i, t in enumerate(targets):
        for label in t:
            y[i, labels.index(label)] = 1.0
    proba = np.zeros_like(y)
    if multi_label:
        splits = KFold(min(folds, n), shuffle=True, random_state=seed).split(emb)
    else:
        counts = y.sum(axis=0)
        k = max(2, min(folds, int(counts.max())))
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(emb, y.argmax(axis=1))
    for train, test in splits:
        head = fit_head(labels, multi_label, emb[train], [list(targets[i]) for i in train], seed=seed)
        proba[test] = head.predict_proba(emb[test]) if head is not None else y[train].mean(axis=0)
    return proba
