"""When to train: a pure function over stored counters."""

from __future__ import annotations


def should_train(usable_labels: int, trained_on: int, *, train_every: int, min_labels: int) -> bool:
    """True when ``train_every`` (> 0) new usable labels arrived since the served version was trained."""
    if train_every <= 0 or usable_labels < min_labels:
        return False
    return usable_labels - trained_on >= train_every
