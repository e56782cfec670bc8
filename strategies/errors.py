"""Errors raised by query strategies.

Hierarchy::

    StrategyError (ValueError)
    ├── EmptyPoolError           the pool has no rows
    ├── PoolTooSmallError        more instances asked than the pool holds
    ├── MissingInputError        the strategy needs embeddings (or labeled embeddings) it was not given
    └── UnknownStrategyError     a name that is not in the registry (lists the known names)
"""

from __future__ import annotations


class StrategyError(ValueError):
    """Base of strategy errors."""


class EmptyPoolError(StrategyError):
    """The unlabeled pool is empty."""


class PoolTooSmallError(StrategyError):
    """``n_instances`` exceeds the pool size."""


class MissingInputError(StrategyError):
    """A required input (embeddings) is missing or misshapen."""


class UnknownStrategyError(StrategyError, KeyError):
    """No strategy of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown strategy"
