"""Strategies by name, what each one needs, and loading a user's own strategy from a dotted path.

A strategy declares what it needs in its ``StrategyInfo``: embeddings of the pool (and of the labeled rows),
whether it is meant for multi-label probabilities, and the certainty it ranks by (``strategies.certainty``). A
user's own function declares the same with the ``declare`` decorator; without it, it is given embeddings and its
queue gets rank-matched certainties.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar, cast

from strategies import scores
from strategies.base import QueryStrategy
from strategies.certainty import Certainty
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

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class StrategyInfo:
    """A strategy and what it needs: the call site (``backend.ranking.rank``) gives it exactly that."""

    name: str
    strategy: QueryStrategy
    needs_embeddings: bool = False
    """Pool embeddings (n_pool, dim) and labeled embeddings (n_labeled, dim) are computed and passed."""
    multi_label: bool = False
    """Meant for independent per-label probabilities (``<Choices choice="multiple">``)."""
    certainty: Certainty | None = None
    """The certainty it ranks by, most uncertain first (None: its order is not a per-row measure)."""

    @property
    def summary(self) -> str:
        """The first line of the strategy's docstring."""
        doc = (self.strategy.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


_INFOS = (
    StrategyInfo("random", random_sampling),
    StrategyInfo("least_confidence", least_confidence_sampling, certainty=scores.top_probability),
    StrategyInfo("margin", margin_sampling, certainty=scores.margin_certainty),
    StrategyInfo("entropy", entropy_sampling, certainty=scores.entropy_certainty),
    StrategyInfo(
        "mean_label_uncertainty",
        mean_label_uncertainty_sampling,
        multi_label=True,
        certainty=scores.mean_label_certainty,
    ),
    StrategyInfo(
        "max_label_uncertainty", max_label_uncertainty_sampling, multi_label=True, certainty=scores.min_label_certainty
    ),
    StrategyInfo("cardinality_inconsistency", cardinality_inconsistency_sampling, multi_label=True),
    StrategyInfo("coreset", coreset_sampling, needs_embeddings=True),
    StrategyInfo("ranked_batch", ranked_batch_sampling, needs_embeddings=True),
    StrategyInfo("information_density", information_density_sampling, needs_embeddings=True),
    StrategyInfo("balanced_cold_start", balanced_cold_start),
)
STRATEGIES: Mapping[str, StrategyInfo] = MappingProxyType({info.name: info for info in _INFOS})
REGISTRY: Mapping[str, QueryStrategy] = MappingProxyType({info.name: info.strategy for info in _INFOS})
NEEDS_EMBEDDINGS = frozenset(info.name for info in _INFOS if info.needs_embeddings)
MULTI_LABEL = frozenset(info.name for info in _INFOS if info.multi_label)


def declare(
    *, needs_embeddings: bool = False, multi_label: bool = False, certainty: Certainty | None = None
) -> Callable[[F], F]:
    """Decorate your own strategy with what it needs (read by ``describe`` when it is loaded by dotted path)."""

    def mark(fn: F) -> F:
        fn.needs_embeddings = needs_embeddings  # type: ignore[attr-defined]
        fn.multi_label = multi_label  # type: ignore[attr-defined]
        fn.certainty = certainty  # type: ignore[attr-defined]
        return fn

    return mark


def describe(name: str) -> StrategyInfo:
    """The ``StrategyInfo`` of a registered strategy, or of one loaded from ``package.module.function``."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    fn = get_strategy(name)
    declared = hasattr(fn, "needs_embeddings")
    return StrategyInfo(
        name,
        fn,
        needs_embeddings=bool(getattr(fn, "needs_embeddings", True)) if declared else True,
        multi_label=bool(getattr(fn, "multi_label", False)),
        certainty=getattr(fn, "certainty", None),
    )


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
