"""Strategies by name, and loading a user's own strategy from a dotted path."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from strategies.base import QueryStrategy
from strategies.diversity import (
    balanced_cold_start,
    coreset_sampling,
    information_density_sampling,
    ranked_batch_sampling,
)
from strategies.errors import UnknownStrategyError
from strategies.uncertainty import (
    cardinality_inconsistency_sampling,
    entropy_sampling,
    least_confidence_sampling,
    margin_sampling,
    max_label_uncertainty_sampling,
    mean_label_uncertainty_sampling,
    random_sampling,
)

REGISTRY: Mapping[str, QueryStrategy] = MappingProxyType(
    {
        "random": random_sampling,
        "least_confidence": least_confidence_sampling,
        "margin": margin_sampling,
        "entropy": entropy_sampling,
        "mean_label_uncertainty": mean_label_uncertainty_sampling,
        "max_label_uncertainty": max_label_uncertainty_sampling,
        "cardinality_inconsistency": cardinality_inconsistency_sampling,
        "coreset": coreset_sampling,
        "ranked_batch": ranked_batch_sampling,
        "information_density": information_density_sampling,
        "balanced_cold_start": balanced_cold_start,
    }
)
NEEDS_EMBEDDINGS = frozenset({"coreset", "ranked_batch", "information_density"})
MULTI_LABEL = frozenset({"mean_label_uncertainty", "max_label_uncertainty", "cardinality_inconsistency"})


def get_strategy(name: str) -> QueryStrategy:
    """A registered strategy, or one loaded from ``package.module:function`` / ``package.module.function``."""
    if name in REGISTRY:
        return REGISTRY[name]
    if "." in name or ":" in name:
        module_name, _, attr = name.replace(":", ".").rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownStrategyError(f"strategy {name!r} could not be loaded: {exc}") from None
        if not callable(found):
            raise UnknownStrategyError(f"strategy {name!r} is not callable")
        return cast(QueryStrategy, found)
    raise UnknownStrategyError(
        f"unknown strategy {name!r}; known: {sorted(REGISTRY)} or a dotted path 'package.module.function'"
    )
